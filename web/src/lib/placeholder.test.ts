// @vitest-environment jsdom
import { rgbaToThumbHash } from "thumbhash";
import { describe, expect, it } from "vitest";
import { placeholderDataUrl, placeholderUrl } from "./placeholder.ts";

/** What the proxy answers for f=thumbhash: a ThumbHash of the variant's pixels, base64. */
function thumbHashOf(width: number, height: number, rgb: readonly [number, number, number]): string {
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < rgba.length; i += 4) rgba.set([...rgb, 255], i);
  return btoa(String.fromCharCode(...rgbaToThumbHash(width, height, rgba)));
}

describe("placeholders", () => {
  it("asks the proxy for a 100 px wide ThumbHash of the original", () => {
    expect(placeholderUrl("albums/a b.jpg")).toBe("/img/albums/a%20b.jpg?w=100&f=thumbhash");
  });

  it("decodes the proxy's base64 text into a PNG data URL for the tile's background", () => {
    const url = placeholderDataUrl(`${thumbHashOf(100, 56, [200, 40, 40])}\n`);
    expect(url).toMatch(/^data:image\/png;base64,[A-Za-z0-9+/]+=*$/);
  });

  it("gives nothing for text that is not a ThumbHash, so the tile keeps its shimmer", () => {
    expect(placeholderDataUrl("")).toBeUndefined();
    expect(placeholderDataUrl("not base64 at all!")).toBeUndefined();
    expect(placeholderDataUrl('{"error":"RATE_LIMITED"}')).toBeUndefined();
  });
});
