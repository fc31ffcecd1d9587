import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ClusterBus } from "../../../src/cache/cluster-bus.ts";
import type { ClusterMessage } from "../../../src/cache/cluster-bus.ts";
import { createRedisConnection } from "../../../src/cache/redis-connection.ts";
import type { RedisConnection } from "../../../src/cache/redis-connection.ts";
import { TierHealth } from "../../../src/cache/tier-health.ts";
import { connectRedis, SHARED_REDIS_URL, uniquePrefix } from "../../helpers/redis.ts";
import type { TestRedisClient } from "../../helpers/redis.ts";

let publisher: TestRedisClient;
const open: { bus: ClusterBus; client: RedisConnection }[] = [];

beforeAll(async () => {
  publisher = await connectRedis(); // fails the file loudly when Redis is absent
});

afterEach(async () => {
  for (const { client } of open.splice(0)) {
    await client.close();
  }
});

afterAll(async () => {
  await publisher.close();
});

interface Warning {
  readonly object: object;
  readonly message: string;
}

async function startBus(options: { now?: () => number } = {}) {
  const warnings: Warning[] = [];
  const log = { warn: (object: object, message: string) => void warnings.push({ object, message }), info: () => {} };
  const client = createRedisConnection({ kind: "single", url: SHARED_REDIS_URL }, log);
  const keyPrefix = uniquePrefix();
  const bus = new ClusterBus({
    client,
    keyPrefix,
    health: new TierHealth({ tier: "redis", log }),
    log,
    ...(options.now ? { now: options.now } : {}),
  });
  open.push({ bus, client });
  expect(await bus.ready(5000)).toBe(true);
  return { bus, channel: `${keyPrefix}events`, warnings };
}

/** Publishes every payload in one MULTI: Redis delivers them back to back, so the subscriber reads them at once. */
async function publishAtOnce(channel: string, payloads: readonly string[]): Promise<void> {
  const multi = publisher.multi();
  for (const payload of payloads) multi.publish(channel, payload);
  await multi.exec();
}

function envelope(message: unknown, from = "another-instance"): string {
  return JSON.stringify({ from, message });
}

/** Resolves once `count` messages reached the handler, or rejects after 3 s. */
function collect(bus: ClusterBus, count: number): Promise<ClusterMessage[]> {
  const seen: ClusterMessage[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${seen.length} of ${count} messages arrived`)), 3000);
    bus.on((message) => {
      seen.push(message);
      if (seen.length === count) {
        clearTimeout(timer);
        resolve(seen);
      }
    });
  });
}

const MALFORMED = [
  "null",
  "{}",
  "not json at all",
  "[]",
  '"a string"',
  envelope(null),
  envelope({}),
  envelope({ type: "purge" }),
  envelope({ type: "purge", path: 7 }),
  envelope({ type: "purge-prefix", prefix: "" }),
  envelope({ type: "purge-prefix" }),
  envelope({ type: "done", key: "k" }),
  envelope({ type: "done", key: 1, isShared: true }),
  envelope({ type: "explode" }),
  JSON.stringify({ message: { type: "purge", path: null } }), // no sender
];

describe("ClusterBus", () => {
  it("drops malformed messages without losing a valid purge that arrived in the same read", async () => {
    const { bus, channel, warnings } = await startBus();
    const received = collect(bus, 1);
    await publishAtOnce(channel, [...MALFORMED, envelope({ type: "purge", path: "photos/cat.jpg" })]);
    expect(await received).toEqual([{ type: "purge", path: "photos/cat.jpg" }]);
    // One warning for the burst (the first), not one per message.
    expect(warnings.filter((w) => w.message.includes("malformed"))).toHaveLength(1);
  });

  it("passes every valid message shape through", async () => {
    const { bus, channel } = await startBus();
    const valid: ClusterMessage[] = [
      { type: "done", key: "v:a.jpg?v1;f=webp;q=80", isShared: true },
      { type: "purge", path: null },
      { type: "purge", path: "a.jpg" },
      { type: "purge-prefix", prefix: "photos/" },
    ];
    const received = collect(bus, valid.length);
    await publishAtOnce(
      channel,
      valid.map((message) => envelope(message)),
    );
    expect(await received).toEqual(valid);
  });

  it("keeps a throwing handler from reaching the Redis client: later handlers and messages still run", async () => {
    const { bus, channel, warnings } = await startBus();
    bus.on(() => {
      throw new Error("handler bug");
    });
    const received = collect(bus, 2);
    await publishAtOnce(channel, [envelope({ type: "purge", path: "a.jpg" }), envelope({ type: "purge", path: null })]);
    expect(await received).toEqual([
      { type: "purge", path: "a.jpg" },
      { type: "purge", path: null },
    ]);
    expect(warnings.filter((w) => w.message.includes("handler failed"))).toHaveLength(1);
  });

  it("warns about malformed messages at most once per interval, with the count dropped since", async () => {
    let now = 1_000_000;
    const { bus, channel, warnings } = await startBus({ now: () => now });
    let received = collect(bus, 1);
    await publishAtOnce(channel, ["null", "null", envelope({ type: "purge", path: null })]);
    await received;
    received = collect(bus, 1);
    await publishAtOnce(channel, ["{}", envelope({ type: "purge", path: null })]);
    await received;
    expect(warnings.filter((w) => w.message.includes("malformed"))).toHaveLength(1);
    now += 60_000;
    received = collect(bus, 1);
    await publishAtOnce(channel, ["{}", envelope({ type: "purge", path: null })]);
    await received;
    const malformed = warnings.filter((w) => w.message.includes("malformed"));
    expect(malformed).toHaveLength(2);
    expect(malformed[1]!.object).toMatchObject({ dropped: 3 }); // the second "null", the "{}" in between, and this one
  });
});
