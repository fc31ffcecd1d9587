import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProxyError } from "../../../src/errors.ts";
import { parseRange, matchesIfNoneMatch } from "../../../src/http/conditional.ts";
import { MAX_PATH_SEGMENTS, parseImagePath } from "../../../src/http/path.ts";

describe("parseImagePath", () => {
  it("decodes each segment once", () => {
    expect(parseImagePath("photos/My%20Trip/a.jpg")).toBe("photos/My Trip/a.jpg");
  });

  it.each([
    "",
    "..",
    "a/../b",
    "%2e%2e/x",
    "a%2fb",
    "a%5cb",
    "a\\b",
    "%00",
    "a//b",
    "/abs",
    "%252e%252e",
    "%E0%A4%A",
    "a/./b",
  ])("refuses %j", (raw) => {
    expect(() => parseImagePath(raw)).toThrow(ProxyError);
  });

  it("allows at most MAX_PATH_SEGMENTS segments, plain or encoded", () => {
    const plain = (n: number): string => Array.from({ length: n }, (_, i) => `d${i}`).join("/");
    expect(parseImagePath(plain(MAX_PATH_SEGMENTS))).toBe(plain(MAX_PATH_SEGMENTS));
    expect(() => parseImagePath(plain(MAX_PATH_SEGMENTS + 1))).toThrow(ProxyError);
    expect(parseImagePath(`${plain(MAX_PATH_SEGMENTS - 1)}/a%20b`)).toBe(`${plain(MAX_PATH_SEGMENTS - 1)}/a b`);
    expect(() => parseImagePath(`${plain(MAX_PATH_SEGMENTS)}/a%20b`)).toThrow(ProxyError);
  });

  it("returns a safe path or a 4xx error for any input", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (raw) => {
        try {
          const path = parseImagePath(raw);
          const segments = path.split("/");
          expect(
            segments.every((s) => s !== "" && s !== "." && s !== ".." && !s.includes("\0") && !s.includes("\\")),
          ).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(ProxyError);
          expect((error as ProxyError).status).toBe(400);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("conditional requests", () => {
  it("matches If-None-Match lists, weak tags and *", () => {
    expect(matchesIfNoneMatch('"a", W/"b"', '"b"')).toBe(true);
    expect(matchesIfNoneMatch("*", '"b"')).toBe(true);
    expect(matchesIfNoneMatch('"c"', '"b"')).toBe(false);
  });

  it("parses single byte ranges and ignores what it cannot honour", () => {
    expect(parseRange("bytes=0-9", 100)).toEqual({ kind: "partial", start: 0, end: 9 });
    expect(parseRange("bytes=90-", 100)).toEqual({ kind: "partial", start: 90, end: 99 });
    expect(parseRange("bytes=-10", 100)).toEqual({ kind: "partial", start: 90, end: 99 });
    expect(parseRange("bytes=50-5000", 100)).toEqual({ kind: "partial", start: 50, end: 99 });
    expect(parseRange("bytes=100-", 100)).toEqual({ kind: "unsatisfiable" });
    expect(parseRange("bytes=0-1,5-6", 100)).toEqual({ kind: "full" });
    expect(parseRange("items=0-1", 100)).toEqual({ kind: "full" });
  });
});
