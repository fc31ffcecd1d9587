// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { fromPerformanceServerTiming, parseServerTiming } from "./server-timing.ts";

describe("parseServerTiming", () => {
  it("reads the proxy's phases", () => {
    expect(parseServerTiming("queue;dur=0.4, origin;dur=31.2, transform;dur=120.5, total;dur=152.9")).toEqual([
      { name: "queue", durationMs: 0.4, description: undefined },
      { name: "origin", durationMs: 31.2, description: undefined },
      { name: "transform", durationMs: 120.5, description: undefined },
      { name: "total", durationMs: 152.9, description: undefined },
    ]);
  });

  it("handles quoted descriptions with commas and semicolons, odd spacing and case", () => {
    expect(parseServerTiming('origin ; DUR = 12 ; desc="fetch, then; verify \\"etag\\"",cache')).toEqual([
      { name: "origin", durationMs: 12, description: 'fetch, then; verify "etag"' },
      { name: "cache", durationMs: undefined, description: undefined },
    ]);
  });

  it("keeps the first of repeated params and skips malformed members", () => {
    expect(parseServerTiming("a;dur=1;dur=2, =broken, , b;dur=x")).toEqual([
      { name: "a", durationMs: 1, description: undefined },
      { name: "b", durationMs: undefined, description: undefined },
    ]);
  });

  it("returns nothing for a missing header", () => {
    expect(parseServerTiming(null)).toEqual([]);
    expect(parseServerTiming("")).toEqual([]);
  });
});

describe("fromPerformanceServerTiming", () => {
  it("maps Resource Timing entries to the same shape", () => {
    expect(fromPerformanceServerTiming([{ name: "total", duration: 5, description: "" }])).toEqual([
      { name: "total", durationMs: 5, description: undefined },
    ]);
  });
});
