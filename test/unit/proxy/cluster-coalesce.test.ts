import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ClusterBus } from "../../../src/cache/cluster-bus.ts";
import { createRedisConnection } from "../../../src/cache/redis-connection.ts";
import type { RedisConnection } from "../../../src/cache/redis-connection.ts";
import { TierHealth } from "../../../src/cache/tier-health.ts";
import { ClusterCoalescer } from "../../../src/proxy/cluster-coalesce.ts";
import { connectRedis, deletePrefix, SHARED_REDIS_URL, uniquePrefix } from "../../helpers/redis.ts";
import type { TestRedisClient } from "../../helpers/redis.ts";

let redis: TestRedisClient;
const open: { bus: ClusterBus; client: RedisConnection }[] = [];
const prefixes: string[] = [];

beforeAll(async () => {
  redis = await connectRedis(); // fails the file loudly when Redis is absent
});

afterEach(async () => {
  for (const { client } of open.splice(0)) {
    await client.close();
  }
});

afterAll(async () => {
  for (const prefix of prefixes) await deletePrefix(redis, prefix);
  await redis.close();
});

const SILENT = { warn: () => undefined, info: () => undefined };

/** `count` instances on one Redis: each its own connection, bus and coalescer; the shared tier is a Map here. */
async function instances(count: number, waitMs = 5000): Promise<ClusterCoalescer[]> {
  const keyPrefix = uniquePrefix();
  prefixes.push(keyPrefix);
  const made: ClusterCoalescer[] = [];
  for (let i = 0; i < count; i++) {
    const client = createRedisConnection({ kind: "single", url: SHARED_REDIS_URL }, SILENT);
    const health = new TierHealth({ tier: "redis", log: SILENT });
    const bus = new ClusterBus({ client, keyPrefix, health, log: SILENT });
    open.push({ bus, client });
    expect(await bus.ready(5000)).toBe(true);
    made.push(new ClusterCoalescer({ client, bus, keyPrefix, health, waitMs, pollMs: 50 }));
  }
  return made;
}

function deferred<T>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void; // assigned synchronously by the Promise constructor below
  const promise = new Promise<T>((yes) => (resolve = yes));
  return { promise, resolve };
}

/** Resolves once `check` holds (polled every 10 ms, at most 3 s). */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe("ClusterCoalescer", () => {
  it("lets one instance produce while the others wait for its shared result", async () => {
    const [a, b, c] = await instances(3);
    const shared = new Map<string, string>();
    const work = deferred<string>();
    let produced = 0;
    const lookup = (): Promise<string | undefined> => Promise.resolve(shared.get("k"));
    const produce = async (): Promise<{ result: string; isShared: boolean }> => {
      produced++;
      const result = await work.promise;
      shared.set("k", result);
      return { result, isShared: true };
    };
    const first = a!.run("k", lookup, produce);
    await until(() => produced === 1);
    const others = [b!.run("k", lookup, produce), c!.run("k", lookup, produce)];
    work.resolve("bytes");
    expect(await first).toEqual({ result: "bytes", waited: false });
    expect(await Promise.all(others)).toEqual([
      { result: "bytes", waited: true },
      { result: "bytes", waited: true },
    ]);
    expect(produced).toBe(1);
    expect([a!.produced, b!.waited + c!.waited]).toEqual([1, 2]);
  });

  it("sends the waiters to do the work themselves when the result could not be shared", async () => {
    const [a, b] = await instances(2);
    const work = deferred<string>();
    let produced = 0;
    const lookup = (): Promise<string | undefined> => Promise.resolve(undefined);
    const first = a!.run("k", lookup, async () => {
      produced++;
      return { result: await work.promise, isShared: false }; // e.g. over --redis-max-entry-bytes
    });
    await until(() => produced === 1);
    const second = b!.run("k", lookup, () => {
      produced++;
      return Promise.resolve({ result: "own", isShared: false });
    });
    work.resolve("first");
    expect(await first).toEqual({ result: "first", waited: false });
    expect(await second).toEqual({ result: "own", waited: false });
    expect(produced).toBe(2);
  });

  it("lets go of an abandoned flight's lock at once: the others neither wait for it nor read its result", async () => {
    const [a, b] = await instances(2, 20_000);
    const shared = new Map<string, string>();
    const old = deferred<string>();
    let isOldRunning = false;
    const lookup = (): Promise<string | undefined> => Promise.resolve(shared.get("k"));
    const stale = a!.run("k", lookup, async () => {
      isOldRunning = true;
      return { result: await old.promise, isShared: false };
    });
    await until(() => isOldRunning);
    a!.abandon((key) => key === "k"); // a purge reached instance A
    const started = performance.now();
    const fresh = await b!.run("k", lookup, () => {
      shared.set("k", "new");
      return Promise.resolve({ result: "new", isShared: true });
    });
    expect(fresh).toEqual({ result: "new", waited: false });
    expect(performance.now() - started).toBeLessThan(5_000); // not the 20 s lock lifetime
    old.resolve("old");
    expect(await stale).toEqual({ result: "old", waited: false });
    expect(await redis.exists(`${prefixes.at(-1)!}lock:k`)).toBe(0);
  });
});
