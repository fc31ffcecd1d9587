import { crc32 } from "node:zlib";
import { CONTENT_TYPES } from "../shared/image-format.ts";
import type { BodyFormat } from "../shared/image-format.ts";
import { cleanValidators } from "../fetcher/origin-caching.ts";
import { Source } from "./source.ts";
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
 *
 * Since issue 20 the meta also says which version of the original the entry comes from and until when it is fresh
 * (`s`, `x`, `l`, `ve`, `vl`, `mr`: see Meta). Entries written before have none of them and still read: their
 * freshness is their storage time plus the tier's --cache-ttl-seconds, as it was, and a variant among them belongs to
 * an unknown version (it is served while that freshness lasts, and never revalidated).
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
  /** etagOf() of the original's bytes this entry comes from (the entry's own `e` for an original). */
  readonly s?: string;
  /** Fresh until (epoch ms of the proxy's clock); null: until evicted. */
  readonly x?: number | null;
  /** Freshness lifetime the origin gave (ms); null: until evicted. */
  readonly l?: number | null;
  /** The origin's ETag and Last-Modified of the original (for conditional requests). */
  readonly ve?: string;
  readonly vl?: string;
  /** The origin forbade serving it stale (must-revalidate, proxy-revalidate, no-cache). */
  readonly mr?: 1;
}

export interface DecodedEntry {
  readonly key: string;
  readonly variant: Variant;
  readonly storedAtMs: number;
}

export function encodeEntry(key: string, variant: Variant, storedAtMs: number): Buffer {
  const { source } = variant;
  const meta: Meta = {
    k: key,
    f: variant.format,
    e: variant.etag,
    ...(variant.width !== undefined ? { w: variant.width } : {}),
    ...(variant.height !== undefined ? { h: variant.height } : {}),
    o: variant.originalBytes,
    t: storedAtMs,
    s: source.etag,
    x: finiteOrNull(source.freshUntilMs),
    l: finiteOrNull(source.lifetimeMs),
    ...(source.validators.etag !== undefined ? { ve: source.validators.etag } : {}),
    ...(source.validators.lastModified !== undefined ? { vl: source.validators.lastModified } : {}),
    ...(source.mustRevalidate ? { mr: 1 as const } : {}),
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

/**
 * The entry, or undefined when the bytes are torn, corrupted or belong to another key. The body is a view. Its Source
 * is a new object (the proxy joins it to its own); an entry from before issue 20 is fresh for `legacyTtlMs` (0: until
 * evicted) after it was stored.
 */
export function decodeEntry(bytes: Buffer, expectedKey: string, legacyTtlMs = 0): DecodedEntry | undefined {
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
    source: sourceOf(meta, legacyTtlMs),
  };
  return { key: meta.k, variant, storedAtMs: meta.t };
}

function sourceOf(meta: Meta, legacyTtlMs: number): Source {
  if (meta.s === undefined) {
    const lifetimeMs = legacyTtlMs > 0 ? legacyTtlMs : Infinity;
    return new Source({
      etag: meta.k.startsWith("o:") ? meta.e : "", // a variant's original is unknown: it matches no version
      freshUntilMs: meta.t + lifetimeMs,
      lifetimeMs,
      validators: {},
      mustRevalidate: false,
    });
  }
  return new Source({
    etag: meta.s,
    freshUntilMs: meta.x ?? Infinity,
    lifetimeMs: meta.l ?? Infinity,
    validators: cleanValidators(meta.ve, meta.vl),
    mustRevalidate: meta.mr === 1,
  });
}

function finiteOrNull(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}

function isNumberOrNull(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === "number" && !Number.isNaN(value));
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
      typeof meta.t !== "number" ||
      (meta.s !== undefined && (typeof meta.s !== "string" || (meta.s !== "" && !STORED_ETAG.test(meta.s)))) ||
      !isNumberOrNull(meta.x) ||
      !isNumberOrNull(meta.l) ||
      (meta.ve !== undefined && typeof meta.ve !== "string") ||
      (meta.vl !== undefined && typeof meta.vl !== "string")
    )
      return undefined;
    return meta as Meta;
  } catch {
    return undefined;
  }
}
