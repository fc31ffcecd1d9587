import { crc32 } from "node:zlib";
import { Source } from "../../src/cache/source.ts";
import type { Validators } from "../../src/fetcher/fetcher.ts";

/** A version of an original for tier tests: fresh until evicted unless `freshUntilMs` says otherwise. */
export function testSource(
  options: { etag?: string; freshUntilMs?: number; validators?: Validators; mustRevalidate?: boolean } = {},
): Source {
  return new Source({
    etag: options.etag ?? '"src"',
    freshUntilMs: options.freshUntilMs ?? Infinity,
    lifetimeMs: Infinity,
    validators: options.validators ?? {},
    mustRevalidate: options.mustRevalidate ?? false,
  });
}

/**
 * An encoded entry as the codec wrote it before issue 20: the same bytes without the version and freshness fields in
 * its metadata (`s`, `x`, `l`, `ve`, `vl`, `mr`), checksummed again.
 */
export function withoutFreshness(entry: Buffer): Buffer {
  const metaLength = entry.readUInt32BE(4);
  const meta = JSON.parse(entry.subarray(16, 16 + metaLength).toString("utf8")) as Record<string, unknown>;
  for (const field of ["s", "x", "l", "ve", "vl", "mr"]) delete meta[field];
  const metaBytes = Buffer.from(JSON.stringify(meta), "utf8");
  const body = entry.subarray(16 + metaLength);
  const head = Buffer.alloc(16);
  head.writeUInt32BE(entry.readUInt32BE(0), 0);
  head.writeUInt32BE(metaBytes.length, 4);
  head.writeUInt32BE(body.length, 8);
  head.writeUInt32BE(crc32(body, crc32(metaBytes)), 12);
  return Buffer.concat([head, metaBytes, body]);
}
