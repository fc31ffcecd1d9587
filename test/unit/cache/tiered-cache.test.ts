import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DiskCache } from "../../../src/cache/disk-cache.ts";
import { RedisCache } from "../../../src/cache/redis-cache.ts";
import { createRedisConnection } from "../../../src/cache/redis-connection.ts";
import type { RedisConnection } from "../../../src/cache/redis-connection.ts";
import type { Variant } from "../../../src/cache/tier.ts";
import { TierHealth } from "../../../src/cache/tier-health.ts";
import { TieredCache } from "../../../src/cache/tiered-cache.ts";
import { connectRedis, deletePrefix, SHARED_REDIS_URL, uniquePrefix } from "../../helpers/redis.ts";
import type { TestRedisClient } from "../../helpers/redis.ts";
import { testSource } from "../../helpers/entries.ts";

const SILENT = { warn: () => undefined, info: () => undefined };
let redis: TestRedisClient;
const clients: RedisConnection[] = [];
const prefixes: string[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  redis = await connectRedis(); // fails the file loudly when Redis is absent
});

afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

afterAll(async () => {
  for (const prefix of prefixes) await deletePrefix(redis, prefix);
  await redis.close();
});

function variant(bytes: number, fill = 5): Variant {
  return {
    body: Buffer.alloc(bytes, fill),
    format: "webp",
    etag: `"t${fill}"`,
    originalBytes: bytes,
    source: testSource(),
  };
}

/** A real disk tier over a real Redis tier, the order the proxy uses. */
async function tiers(options: { redisMaxEntryBytes?: number } = {}) {
  const dir = await mkdtemp(join(tmpdir(), "imagika-tiered-"));
  dirs.push(dir);
  const keyPrefix = uniquePrefix();
  prefixes.push(keyPrefix);
  const disk = await DiskCache.open({
    dir,
    maxBytes: 1 << 20,
    ttlSeconds: 0,
    health: new TierHealth({ tier: "disk", log: SILENT }),
  });
  const client = createRedisConnection({ kind: "single", url: SHARED_REDIS_URL }, SILENT);
  clients.push(client);
  const health = new TierHealth({ tier: "redis", log: SILENT });
  const redisTier = new RedisCache({
    client,
    keyPrefix,
    maxEntryBytes: options.redisMaxEntryBytes ?? 1 << 20,
    ttlSeconds: 0,
    health,
  });
  for (let i = 0; i < 100 && !client.isReady; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  return { disk, redisTier, keyPrefix, cache: new TieredCache([disk, redisTier]) };
}

/** Polls `check` every 10 ms, at most 2 s (the promotion TieredCache.get starts is not awaited). */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe("TieredCache", () => {
  it("writes to every tier and says whether some tier, and a shared one, kept the entry", async () => {
    const { cache, disk, redisTier } = await tiers({ redisMaxEntryBytes: 1000 });
    expect(await cache.set("v:a.jpg?v1;f=webp", variant(100))).toEqual({ isStored: true, isShared: true });
    expect(await cache.set("v:big.jpg?v1;f=webp", variant(5000))).toEqual({ isStored: true, isShared: false });
    expect(disk.stats().entries).toBe(2);
    expect(redisTier.stats().tooLarge).toBe(1);
  });

  it("finds an entry in the first tier that has it and copies it into the tiers above", async () => {
    const { cache, disk, redisTier } = await tiers();
    await redisTier.set("o:up.jpg", variant(300, 9));
    const hit = await cache.get("o:up.jpg");
    expect(hit?.tier).toBe("redis");
    expect(hit?.variant.body.equals(Buffer.alloc(300, 9))).toBe(true);
    await until(() => disk.stats().entries === 1);
    expect(disk.stats().entries).toBe(1);
    expect((await cache.get("o:up.jpg"))?.tier).toBe("disk");
  });

  it("does not copy a hit upwards once the caller says a purge began", async () => {
    const { cache, disk, redisTier } = await tiers();
    await redisTier.set("o:fenced.jpg", variant(300));
    expect((await cache.get("o:fenced.jpg", () => false))?.tier).toBe("redis");
    await new Promise((resolve) => setTimeout(resolve, 50)); // what a promotion would take, several times over
    expect(disk.stats().entries).toBe(0);
  });

  it("purges every tier, or the local ones only for a purge another instance announced", async () => {
    const { cache, disk, redisTier, keyPrefix } = await tiers();
    for (const key of ["o:a/1.jpg", "v:a/1.jpg?v1;f=webp", "o:b.jpg"]) await cache.set(key, variant(50));
    expect(await cache.purge({ kind: "prefix", prefix: "a/" }, true)).toBe(2);
    expect(disk.stats().entries).toBe(1);
    expect(await redis.exists(`${keyPrefix}c:o:a/1.jpg`)).toBe(1); // shared tier untouched
    expect(await cache.purge({ kind: "prefix", prefix: "a/" })).toBe(2); // now Redis' two
    expect(await redisTier.get("v:a/1.jpg?v1;f=webp")).toBeUndefined();
    expect(await cache.purge({ kind: "all" })).toBe(2); // b.jpg on disk and in Redis
  });

  it("deletes one key from every tier", async () => {
    const { cache, disk, redisTier } = await tiers();
    await cache.set("o:one.jpg", variant(50));
    await cache.delete("o:one.jpg");
    expect(disk.stats().entries).toBe(0);
    expect(await redisTier.get("o:one.jpg")).toBeUndefined();
    expect(await cache.get("o:one.jpg")).toBeUndefined();
  });
});
