import { describe, expect, it } from "vitest";
import { mergeStats } from "../../../src/cluster/cluster-stats.ts";

/** The shape /api/stats has (src/app.ts snapshot), trimmed to what the merge rules touch. */
function worker(n: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    uptimeSeconds: 100 + n,
    requests: 10 * n,
    hits: 8 * n,
    misses: 2 * n,
    hitRatio: 0.8,
    cache: { entries: n, bytes: 1000 * n, maxBytes: 512, originals: { entries: n, bytes: 10 * n } },
    rateLimit: { perSecond: 50, burst: 100 },
    tiers: {
      disk: { entries: 40 + n, bytes: 4000 + n, maxBytes: 8192, hits: n, isHealthy: true },
      redis: { hits: n, misses: 1, isHealthy: true },
    },
    origin: `http://origin-${n}/`,
    ...overrides,
  };
}

describe("mergeStats", () => {
  it("sums counters and per-worker memory, and recomputes the hit ratio from the sums", () => {
    const merged = mergeStats([worker(1), worker(2, { hits: 0, misses: 10 })]);
    expect(merged).toMatchObject({
      workers: 2,
      requests: 30,
      hits: 8,
      misses: 12,
      cache: { entries: 3, bytes: 3000, maxBytes: 1024, originals: { entries: 3, bytes: 30 } },
      tiers: { disk: { hits: 3 }, redis: { hits: 3, misses: 2 } },
    });
    expect(merged.hitRatio).toBeCloseTo(8 / 20);
  });

  it("takes the largest value of shared figures: uptime, the configuration, the one disk directory", () => {
    const merged = mergeStats([worker(1), worker(2)]);
    expect(merged).toMatchObject({
      uptimeSeconds: 102,
      rateLimit: { perSecond: 50, burst: 100 },
      tiers: { disk: { entries: 42, bytes: 4002, maxBytes: 8192 } },
    });
  });

  it("is healthy only when every worker is, keeps the first worker's text, and keeps keys only some have", () => {
    const sick = worker(2);
    (sick.tiers as { redis: { isHealthy: boolean } }).redis.isHealthy = false;
    const merged = mergeStats([worker(1), sick, worker(3, { note: "late" })]);
    expect(merged).toMatchObject({
      workers: 3,
      origin: "http://origin-1/",
      note: "late",
      tiers: { disk: { isHealthy: true }, redis: { isHealthy: false } },
    });
  });

  it("gives a zero ratio when nothing was looked up, and one worker's figures unchanged", () => {
    expect(mergeStats([worker(0)]).hitRatio).toBe(0);
    const one = worker(4);
    expect(mergeStats([one])).toEqual({ ...one, hitRatio: 0.8, workers: 1 });
  });
});
