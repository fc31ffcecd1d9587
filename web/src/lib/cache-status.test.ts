// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { cacheOutcome, parseCacheStatus } from "./cache-status.ts";

describe("parseCacheStatus", () => {
  it("reads a hit", () => {
    expect(parseCacheStatus("imagika; hit; ttl=3500")).toEqual([
      { cache: "imagika", isHit: true, fwd: undefined, isCollapsed: false, ttlSeconds: 3500, detail: undefined },
    ]);
  });

  it("reads a collapsed miss", () => {
    expect(parseCacheStatus("imagika; fwd=miss; collapsed")).toEqual([
      { cache: "imagika", isHit: false, fwd: "miss", isCollapsed: true, ttlSeconds: undefined, detail: undefined },
    ]);
  });

  it("reads several caches and quoted details", () => {
    const entries = parseCacheStatus('imagika; fwd=uri-miss; detail="memory, disk", CDN; hit');
    expect(entries.map((entry) => [entry.cache, entry.isHit, entry.detail])).toEqual([
      ["imagika", false, "memory, disk"],
      ["CDN", true, undefined],
    ]);
  });
});

describe("cacheOutcome", () => {
  it("classifies the proxy's entry", () => {
    expect(cacheOutcome("imagika; hit")).toBe("hit");
    expect(cacheOutcome("imagika; fwd=miss")).toBe("miss");
    expect(cacheOutcome("imagika; fwd=miss; collapsed")).toBe("collapsed");
  });

  it("prefers the entry named imagika over other caches", () => {
    expect(cacheOutcome("origin-cache; hit, imagika; fwd=miss")).toBe("miss");
  });

  it("falls back to X-Cache, then to unknown", () => {
    expect(cacheOutcome(null, "HIT from imagika")).toBe("hit");
    expect(cacheOutcome(null, "miss")).toBe("miss");
    expect(cacheOutcome(null, null)).toBe("unknown");
    expect(cacheOutcome("imagika")).toBe("unknown");
  });

  it("counts a revalidated or stale-if-error answer as a hit and new bytes after revalidation as a miss", () => {
    expect(cacheOutcome("imagika; fwd=stale; fwd-status=304; ttl=3600")).toBe("hit");
    expect(cacheOutcome("imagika; fwd=stale; fwd-status=502; ttl=-30")).toBe("hit");
    expect(cacheOutcome("imagika; fwd=stale; fwd-status=200; ttl=3600; stored")).toBe("miss");
    expect(cacheOutcome("imagika; hit; ttl=-12")).toBe("hit");
  });
});
