import { describe, expect, it } from "vitest";
import { decodeEntry, encodeEntry } from "../../../src/cache/entry-codec.ts";
import type { Variant } from "../../../src/cache/tier.ts";
import type { ImageFormat } from "../../../src/image-format.ts";

const body = Buffer.from([0xff, 0xd8, 0xff, 1, 2, 3]);
const variant: Variant = { body, format: "jpeg", etag: '"c6j1lTBaxbhSte5MDV22yWdAiEj"', originalBytes: 99 };

describe("entry codec", () => {
  it("round-trips an entry", () => {
    const decoded = decodeEntry(encodeEntry("k", variant, 1234), "k");
    expect(decoded?.key).toBe("k");
    expect(decoded?.storedAtMs).toBe(1234);
    expect(decoded?.variant).toMatchObject({ format: "jpeg", etag: variant.etag, originalBytes: 99 });
    expect(decoded?.variant.body).toEqual(body);
  });

  it("refuses another key, a flipped bit and a torn entry", () => {
    const bytes = encodeEntry("k", variant, 1);
    expect(decodeEntry(bytes, "other")).toBeUndefined();
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1]! ^= 1;
    expect(decodeEntry(flipped, "k")).toBeUndefined();
    expect(decodeEntry(bytes.subarray(0, bytes.length - 1), "k")).toBeUndefined();
  });

  // Entries in a shared Redis may have been written by anything: their ETag and format reach the wire unvalidated.
  it("refuses a well-formed entry whose ETag could split a header, or whose format is unknown", () => {
    for (const etag of ['"a"\r\nset-cookie: x=1', "unquoted", '""', `"${"a".repeat(65)}"`]) {
      expect(decodeEntry(encodeEntry("k", { ...variant, etag }, 1), "k")).toBeUndefined();
    }
    for (const format of ["bmp", "__proto__", "toString"]) {
      const bytes = encodeEntry("k", { ...variant, format: format as ImageFormat }, 1);
      expect(decodeEntry(bytes, "k")).toBeUndefined();
    }
  });
});
