// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { parseStats } from "./api.ts";
import { appendSample, deriveRates } from "./stats-history.ts";

const counters = (requests: number, hits: number, misses: number, rssBytes = 0) => ({
  requests,
  hits,
  misses,
  rssBytes,
});
const polled = (requests: number, hits: number, misses: number, rssBytes = 0) => ({
  ...counters(requests, hits, misses),
  memory: parseStats({ memory: { rssBytes } }).memory,
});

describe("appendSample", () => {
  it("keeps only the samples inside the window", () => {
    let history = appendSample([], polled(0, 0, 0), 0, 10_000);
    history = appendSample(history, polled(5, 1, 4, 200), 5_000, 10_000);
    history = appendSample(history, polled(9, 3, 6, 300), 12_000, 10_000);
    expect(history.map((sample) => sample.atMs)).toEqual([5_000, 12_000]);
    expect(history.map((sample) => sample.rssBytes)).toEqual([200, 300]); // charted as memory over time
  });
});

describe("deriveRates", () => {
  it("turns counter deltas into requests per second and a per-interval hit ratio", () => {
    const history = [
      { atMs: 0, ...counters(100, 10, 10) },
      { atMs: 2000, ...counters(140, 40, 20) },
      { atMs: 3000, ...counters(140, 40, 20) },
    ];
    expect(deriveRates(history)).toEqual([
      { atMs: 2000, requestsPerSecond: 20, hitRatio: 0.75 },
      { atMs: 3000, requestsPerSecond: 0, hitRatio: null },
    ]);
  });

  it("skips the interval in which the proxy restarted", () => {
    const history = [
      { atMs: 0, ...counters(500, 300, 200) },
      { atMs: 1000, ...counters(3, 1, 2) },
      { atMs: 2000, ...counters(13, 6, 7) },
    ];
    expect(deriveRates(history)).toEqual([{ atMs: 2000, requestsPerSecond: 10, hitRatio: 0.5 }]);
  });
});

describe("parseStats", () => {
  it("reads numbers and defaults what an older proxy leaves out to 0", () => {
    const stats = parseStats({ requests: 7, hitRatio: 0.5, cache: { bytes: 10, variants: { entries: 2 } } });
    expect(stats.requests).toBe(7);
    expect(stats.hitRatio).toBe(0.5);
    expect(stats.coalesced).toBe(0);
    expect(stats.cache).toEqual({
      entries: 0,
      bytes: 10,
      maxBytes: 0,
      variants: { entries: 2, bytes: 0, maxBytes: 0 },
      originals: { entries: 0, bytes: 0, maxBytes: 0 },
    });
    expect(stats.rateLimit).toEqual({ perSecond: 0, burst: 0 });
  });
});
