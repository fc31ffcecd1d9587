import { crc32 } from "node:zlib";
import { CONTENT_TYPES } from "../image-format.ts";
import type { BodyFormat } from "../image-format.ts";
import type { Variant } from "./tier.ts";

/**
 * One stored entry as bytes, shared by the disk and Redis tiers, so a torn write or a flipped bit is caught before
 * anything is served:
 *
 * ```text
 * 0        4             8             12            16                16+metaLength
 * | "IMK1" | metaLength   | bodyLength   | crc32       | meta (JSON)     | body ...            |
 * | magic  | u32 BE       | u32 BE       | meta + body | key, format, …  | image bytes         |
 * ```
 * The total length must equal 16 + metaLength + bodyLength exactly, and the key inside must be the one asked for.
 */
const MAGIC = 0x494d4b31; // "IMK1"
/**
 * A stored ETag of the shape etagOf() makes (a quoted base64url token; etagOf's are 27 characters). The HTTP layer
 * writes ETags and content types onto the wire without validating them again, so an entry written by something else
 * into a shared Redis cannot smuggle a header in.
 */
const STORED_ETAG = /^"[\w-]{1,64}"$/;
export const ENTRY_HEADER_BYTES = 16;

interface Meta {
  readonly k: string;
  readonly f: BodyFormat;
  readonly e: string;
  readonly w?: number;
  readonly h?: number;
  readonly o: number;
  /** Stored at (epoch ms): TTLs survive restarts. */
  readonly t: number;
}

export interface DecodedEntry {
  readonly key: string;
  readonly variant: Variant;
  readonly storedAtMs: number;
}

export function encodeEntry(key: string, variant: Variant, storedAtMs: number): Buffer {
  const meta: Meta = {
    k: key,
    f: variant.format,
    e: variant.etag,
    ...(variant.width !== undefined ? { w: variant.width } : {}),
    ...(variant.height !== undefined ? { h: variant.height } : {}),
    o: variant.originalBytes,
    t: storedAtMs,
  };
  const metaBytes = Buffer.from(JSON.stringify(meta), "utf8");
  const out = Buffer.allocUnsafe(ENTRY_HEADER_BYTES + metaBytes.length + variant.body.length);
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt32BE(metaBytes.length, 4);
  out.writeUInt32BE(variant.body.length, 8);
  out.writeUInt32BE(crc32(variant.body, crc32(metaBytes)), 12);
  metaBytes.copy(out, ENTRY_HEADER_BYTES);
  variant.body.copy(out, ENTRY_HEADER_BYTES + metaBytes.length);
  return out;
}

/** Bytes an entry takes once encoded (what the Redis cap and the disk budget count). */
export function encodedSize(key: string, variant: Variant): number {
  return ENTRY_HEADER_BYTES + Buffer.byteLength(key) + 128 + variant.body.length; // 128: meta besides the key
}

/** Reads only the key from the first bytes of an entry (the disk index scan); undefined when not an entry. */
export function readEntryKey(head: Buffer): { key: string } | undefined {
  if (head.length < ENTRY_HEADER_BYTES || head.readUInt32BE(0) !== MAGIC) return undefined;
  const metaLength = head.readUInt32BE(4);
  if (head.length < ENTRY_HEADER_BYTES + metaLength) return undefined;
  const meta = parseMeta(head.subarray(ENTRY_HEADER_BYTES, ENTRY_HEADER_BYTES + metaLength));
  return meta ? { key: meta.k } : undefined;
}

/** Length of the header plus meta, from the fixed header (undefined when not an entry). */
export function entryHeadLength(fixed: Buffer): number | undefined {
  if (fixed.length < ENTRY_HEADER_BYTES || fixed.readUInt32BE(0) !== MAGIC) return undefined;
  return ENTRY_HEADER_BYTES + fixed.readUInt32BE(4);
}

/** The entry, or undefined when the bytes are torn, corrupted or belong to another key. The body is a view. */
export function decodeEntry(bytes: Buffer, expectedKey: string): DecodedEntry | undefined {
  if (bytes.length < ENTRY_HEADER_BYTES || bytes.readUInt32BE(0) !== MAGIC) return undefined;
  const metaLength = bytes.readUInt32BE(4);
  const bodyLength = bytes.readUInt32BE(8);
  if (bytes.length !== ENTRY_HEADER_BYTES + metaLength + bodyLength) return undefined;
  const metaBytes = bytes.subarray(ENTRY_HEADER_BYTES, ENTRY_HEADER_BYTES + metaLength);
  const body = bytes.subarray(ENTRY_HEADER_BYTES + metaLength);
  if (crc32(body, crc32(metaBytes)) !== bytes.readUInt32BE(12)) return undefined;
  const meta = parseMeta(metaBytes);
  if (!meta || meta.k !== expectedKey) return undefined;
  const variant: Variant = {
    body,
    format: meta.f,
    etag: meta.e,
    ...(meta.w !== undefined ? { width: meta.w } : {}),
    ...(meta.h !== undefined ? { height: meta.h } : {}),
    originalBytes: meta.o,
  };
  return { key: meta.k, variant, storedAtMs: meta.t };
}

function parseMeta(bytes: Buffer): Meta | undefined {
  try {
    const meta = JSON.parse(bytes.toString("utf8")) as Partial<Meta> | null;
    if (
      meta === null ||
      typeof meta.k !== "string" ||
      typeof meta.f !== "string" ||
      !Object.hasOwn(CONTENT_TYPES, meta.f) ||
      typeof meta.e !== "string" ||
      !STORED_ETAG.test(meta.e) ||
      typeof meta.o !== "number" ||
      typeof meta.t !== "number"
    )
      return undefined;
    return meta as Meta;
  } catch {
    return undefined;
  }
}
