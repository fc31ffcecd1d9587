import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisConnection } from "../../../src/cache/redis-connection.ts";
import type { RedisConnection } from "../../../src/cache/redis-connection.ts";
import { TierHealth } from "../../../src/cache/tier-health.ts";
import { RedisRateLimiter } from "../../../src/rate-limit/redis-store.ts";
import { TokenBucketLimiter } from "../../../src/rate-limit/token-bucket.ts";
import { startPrivateRedis, uniquePrefix, untilReady } from "../../helpers/redis.ts";
import type { PrivateRedis } from "../../helpers/redis.ts";

const quiet = { warn: () => {}, info: () => {} };
let redis: PrivateRedis;
let client: RedisConnection;

beforeAll(async () => {
  redis = await startPrivateRedis();
  client = createRedisConnection({ kind: "single", url: redis.url }, quiet);
  await untilReady(client);
});

afterAll(async () => {
  redis.thaw();
  await client.close();
  await redis.stop();
});

function limiterFor(health: TierHealth): RedisRateLimiter {
  return new RedisRateLimiter({
    client: client.untimed,
    timeoutMs: 100,
    keyPrefix: uniquePrefix(),
    perSecond: 0.01, // no refill during the test
    burst: 3,
    health,
    fallback: new TokenBucketLimiter({ perSecond: 0.01, burst: 1 }),
  });
}

describe("RedisRateLimiter", () => {
  it("draws from the Redis bucket: the burst, then refusals", async () => {
    const limiter = limiterFor(new TierHealth({ tier: "redis", log: quiet }));
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await limiter.take("client-a"));
    expect(decisions.map((d) => [d.allowed, d.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
    ]);
    expect(limiter.fallbackDecisions).toBe(0);
  });

  it("answers from the fallback when Redis stalls, before Redis answers, and skips Redis while it is failed", async () => {
    const health = new TierHealth({ tier: "redis", log: quiet, minBackoffMs: 60_000 });
    const limiter = limiterFor(health);
    expect((await limiter.take("client-b")).allowed).toBe(true); // through Redis
    redis.freeze();
    try {
      const stalled = Promise.resolve(limiter.take("client-b"));
      const outcome = await Promise.race([
        stalled,
        new Promise<"still waiting">((resolve) => setTimeout(() => resolve("still waiting"), 5000)),
      ]);
      expect(outcome).toMatchObject({ allowed: true }); // the fallback's own bucket (burst 1)
      expect(limiter.fallbackDecisions).toBe(1);
      expect(health.isHealthy).toBe(false);
      // While failed (backoff 60 s), takes go straight to the fallback: synchronous, no Redis call.
      const next = limiter.take("client-b");
      expect(next).not.toBeInstanceOf(Promise);
      expect(next).toMatchObject({ allowed: false });
    } finally {
      redis.thaw();
    }
  });
});
