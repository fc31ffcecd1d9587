import { describe, expect, it } from "vitest";
import { isKeyOfPath, originalKey, pathOfKey, variantCacheKey } from "../../../src/cache/cache-key.ts";

const CANONICAL = "v1;f=webp;w=100;enlarge=0;q=80";

describe("cache keys", () => {
  it("keeps a path's keys apart from those of a longer path that continues with '?'", () => {
    // A decoded path may contain "?" (from %3F): purging "q" must not drop the variants of "q?x.jpg".
    expect(isKeyOfPath(variantCacheKey("q?x.jpg", CANONICAL), "q")).toBe(false);
    expect(isKeyOfPath(variantCacheKey("q?x.jpg", CANONICAL), "q?x.jpg")).toBe(true);
    expect(isKeyOfPath(variantCacheKey("q", CANONICAL), "q")).toBe(true);
    expect(isKeyOfPath(originalKey("q?x.jpg"), "q")).toBe(false);
    expect(isKeyOfPath(originalKey("q"), "q")).toBe(true);
  });

  it("gives a remote URL with a query its own keys, apart from the same URL without it", () => {
    const url = "https://images.example.com/a.jpg?size=large";
    expect(isKeyOfPath(variantCacheKey(url, CANONICAL), url)).toBe(true);
    expect(isKeyOfPath(variantCacheKey(url, CANONICAL), "https://images.example.com/a.jpg")).toBe(false);
    expect(pathOfKey(variantCacheKey(url, CANONICAL))).toBe(url);
    expect(pathOfKey(originalKey(url))).toBe(url);
  });

  it("names no path for keys of another shape", () => {
    expect(pathOfKey("x:a.jpg")).toBeUndefined();
    expect(pathOfKey("v:no-options")).toBeUndefined();
  });

  it("refuses canonical options containing '?': the path would become ambiguous", () => {
    expect(() => variantCacheKey("a.jpg", "v1;f=webp?")).toThrow();
  });
});
