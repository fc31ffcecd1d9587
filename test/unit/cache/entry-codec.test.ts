import { describe, expect, it } from "vitest";
import { decodeEntry, encodeEntry } from "../../../src/cache/entry-codec.ts";
import type { Variant } from "../../../src/cache/tier.ts";
import type { ImageFormat } from "../../../src/shared/image-format.ts";
import { testSource, withoutFreshness } from "../../helpers/entries.ts";

const body = Buffer.from([0xff, 0xd8, 0xff, 1, 2, 3]);
const variant: Variant = {
  body,
  format: "jpeg",
  etag: '"c6j1lTBaxbhSte5MDV22yWdAiEj"',
  originalBytes: 99,
  source: testSource(),
};

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

  it("round-trips the version and freshness of the original, and its validators", () => {
    const source = testSource({
      etag: '"origEtag"',
      freshUntilMs: 5000,
      validators: { etag: 'W/"v1"', lastModified: "Tue, 01 Apr 2025 10:00:00 GMT" },
      mustRevalidate: true,
    });
    const decoded = decodeEntry(encodeEntry("v:a.jpg?w=1", { ...variant, source }, 1), "v:a.jpg?w=1");
    expect(decoded?.variant.source).toMatchObject({
      etag: '"origEtag"',
      freshUntilMs: 5000,
      lifetimeMs: Infinity,
      validators: { etag: 'W/"v1"', lastModified: "Tue, 01 Apr 2025 10:00:00 GMT" },
      mustRevalidate: true,
    });
    const forever = decodeEntry(encodeEntry("o:a.jpg", variant, 1), "o:a.jpg");
    expect(forever?.variant.source.freshUntilMs).toBe(Infinity);
  });

  it("reads an entry written before issue 20: fresh for the tier's TTL from when it was stored", () => {
    const old = withoutFreshness(encodeEntry("o:a.jpg", variant, 1000));
    expect(decodeEntry(old, "o:a.jpg", 60_000)?.variant.source).toMatchObject({
      etag: variant.etag, // an original's version is its own ETag
      freshUntilMs: 61_000,
      validators: {},
    });
    const oldVariant = withoutFreshness(encodeEntry("v:a.jpg?w=1", variant, 1000));
    expect(decodeEntry(oldVariant, "v:a.jpg?w=1", 0)?.variant.source).toMatchObject({
      etag: "",
      freshUntilMs: Infinity,
    });
  });

  it("drops stored validators that could split a header when sent back to the origin", () => {
    const source = testSource({ validators: { etag: '"a"\r\nx: 1', lastModified: "yesterday\r\nx: 1" } });
    const decoded = decodeEntry(encodeEntry("o:a.jpg", { ...variant, source }, 1), "o:a.jpg");
    expect(decoded?.variant.source.validators).toEqual({});
  });
});
