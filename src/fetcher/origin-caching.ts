import type { OriginCaching, Validators } from "./fetcher.ts";

/** The response headers that decide caching, as the origin sent them (repeated ones joined with ", "). */
export interface CachingHeaders {
  readonly etag?: string | undefined;
  readonly lastModified?: string | undefined;
  readonly cacheControl?: string | undefined;
  readonly expires?: string | undefined;
  readonly date?: string | undefined;
  readonly age?: string | undefined;
}

/**
 * An entity-tag as RFC 9110 §8.8.3 spells it, at most 256 characters. Validators go back to the origin as request
 * headers and are stored in the shared tiers: anything else (a CR or LF above all) is dropped, not sent.
 */
const ENTITY_TAG = /^(?:W\/)?"[\x21\x23-\x7e]{0,250}"$/;
/** An HTTP-date is 29 characters; 64 leaves room for the obsolete forms Date.parse also reads. */
const MAX_DATE_LENGTH = 64;
const PRINTABLE = /^[\x20-\x7e]+$/;

/** The validators worth sending back: a well-formed ETag, a Last-Modified that is a date. */
export function cleanValidators(etag: string | undefined, lastModified: string | undefined): Validators {
  const cleanEtag = etag !== undefined && ENTITY_TAG.test(etag) ? etag : undefined;
  const cleanDate =
    lastModified !== undefined &&
    lastModified.length <= MAX_DATE_LENGTH &&
    PRINTABLE.test(lastModified) &&
    !Number.isNaN(Date.parse(lastModified))
      ? lastModified
      : undefined;
  return { ...(cleanEtag !== undefined ? { etag: cleanEtag } : {}), ...(cleanDate ? { lastModified: cleanDate } : {}) };
}

/**
 * Freshness per RFC 9111 §4.2.1, as a shared cache reads it: `s-maxage` beats `max-age`, which beats `Expires` (taken
 * relative to the origin's own `Date`, so its clock's skew does not matter); `Age` (time already spent in caches
 * upstream) is subtracted. `no-store` and a bare `private` forbid storing (§5.2.2.5, §5.2.2.7); a bare `no-cache`
 * means "revalidate before every use" (freshness 0, §5.2.2.4), and with `must-revalidate`/`proxy-revalidate` a stale
 * copy may never be served (§5.2.2.2), not even when the origin is down. A malformed `Expires` means "already
 * expired" (§5.3).
 */
export function parseOriginCaching(headers: CachingHeaders, nowMs = Date.now()): OriginCaching {
  let sMaxAge: number | undefined;
  let maxAge: number | undefined;
  let isNoStore = false;
  let mustRevalidate = false;
  let isNoCache = false;
  for (const part of (headers.cacheControl ?? "").split(",")) {
    const [rawName = "", ...rest] = part.split("=");
    const name = rawName.trim().toLowerCase();
    const hasValue = rest.length > 0;
    const value = rest
      .join("=")
      .trim()
      .replace(/^"(.*)"$/, "$1");
    switch (name) {
      case "no-store":
        isNoStore = true;
        break;
      case "private":
        if (!hasValue) isNoStore = true; // private="field" only hides those fields
        break;
      case "no-cache":
        if (!hasValue) isNoCache = true;
        break;
      case "must-revalidate":
      case "proxy-revalidate":
        mustRevalidate = true;
        break;
      case "s-maxage":
        sMaxAge = deltaSeconds(value) ?? sMaxAge;
        break;
      case "max-age":
        maxAge = deltaSeconds(value) ?? maxAge;
        break;
    }
  }
  let lifetime = isNoCache ? 0 : (sMaxAge ?? maxAge);
  if (lifetime === undefined && headers.expires !== undefined) {
    const expires = Date.parse(headers.expires);
    const date = headers.date === undefined ? Number.NaN : Date.parse(headers.date);
    lifetime = Number.isNaN(expires)
      ? 0
      : Math.max(0, Math.floor((expires - (Number.isNaN(date) ? nowMs : date)) / 1000));
  }
  const age = headers.age === undefined ? undefined : deltaSeconds(headers.age.trim());
  if (lifetime !== undefined && age !== undefined) lifetime = Math.max(0, lifetime - age);
  return {
    validators: cleanValidators(headers.etag?.trim(), headers.lastModified?.trim()),
    lifetimeSeconds: lifetime,
    isNoStore,
    mustRevalidate: mustRevalidate || isNoCache,
  };
}

/** RFC 9111 §1.2.2 delta-seconds; an overflow is 2³¹ (a year is plenty); undefined when not digits. */
function deltaSeconds(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  return Math.min(Number(text), 2 ** 31);
}

/**
 * The conditional request headers (RFC 9110 §13.1): If-None-Match when there is an ETag, else If-Modified-Since;
 * none without validators. Checked again here: stored validators may come from a shared Redis.
 */
export function conditionalHeaders(validators: Validators | undefined): Record<string, string> {
  if (validators === undefined) return {};
  const clean = cleanValidators(validators.etag, validators.lastModified);
  if (clean.etag !== undefined) return { "if-none-match": clean.etag };
  if (clean.lastModified !== undefined) return { "if-modified-since": clean.lastModified };
  return {};
}
