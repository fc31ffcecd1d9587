// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { burstUrls, classifyResponse, summarizeBurst, type BurstOutcome } from "./burst.ts";

const outcome = (status: number, cacheStatus: string | null, extra: Partial<BurstOutcome> = {}): BurstOutcome => ({
  kind: classifyResponse(status, cacheStatus),
  status,
  isHit: cacheStatus?.includes("hit") ?? false,
  durationMs: 10,
  retryAfterSeconds: undefined,
  ...extra,
});

describe("classifyResponse", () => {
  it("sorts responses into the burst's buckets", () => {
    expect(classifyResponse(200, "imagika; hit")).toBe("served");
    expect(classifyResponse(200, "imagika; fwd=miss; collapsed")).toBe("coalesced");
    expect(classifyResponse(429, null)).toBe("rateLimited");
    expect(classifyResponse(503, null)).toBe("overloaded");
    expect(classifyResponse(502, null)).toBe("failed");
    expect(classifyResponse(0, null)).toBe("network");
  });
});

describe("summarizeBurst", () => {
  it("counts every bucket and keeps the longest Retry-After", () => {
    const summary = summarizeBurst(
      [
        outcome(200, "imagika; fwd=miss"),
        outcome(200, "imagika; fwd=miss; collapsed"),
        outcome(200, "imagika; fwd=miss; collapsed"),
        outcome(200, "imagika; hit", { durationMs: 40 }),
        outcome(429, null, { retryAfterSeconds: 1 }),
        outcome(429, null, { retryAfterSeconds: 3 }),
        outcome(503, null),
        outcome(502, null),
        outcome(502, null),
        outcome(0, null),
      ],
      123,
    );
    expect(summary).toMatchObject({
      total: 10,
      ok: 4,
      hits: 1,
      coalesced: 2,
      rateLimited: 2,
      overloaded: 1,
      networkErrors: 1,
      wallMs: 123,
      slowestMs: 40,
      retryAfterSeconds: 3,
    });
    expect([...summary.otherErrors]).toEqual([[502, 2]]);
  });
});

describe("burstUrls", () => {
  it("repeats one variant in `same` mode", () => {
    const urls = burstUrls("a.jpg", 3, "same", 10, 3840);
    expect(new Set(urls).size).toBe(1);
    expect(urls[0]).toBe("/img/a.jpg?w=74&f=auto");
  });

  it("asks for different small variants in `distinct` mode, within the original's width", () => {
    const urls = burstUrls("a.jpg", 50, "distinct", 0, 100);
    expect(new Set(urls).size).toBe(36); // widths 64..99 cycle
    for (const url of urls) {
      const width = Number(new URL(url, "http://x").searchParams.get("w"));
      expect(width).toBeGreaterThanOrEqual(64);
      expect(width).toBeLessThan(100);
    }
  });
});
