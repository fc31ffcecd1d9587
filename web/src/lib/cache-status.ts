import { parseHeaderList } from "./header-list.ts";

/** The cache name the proxy uses in `Cache-Status`. */
export const PROXY_CACHE_NAME = "imagika";

/** What one cache did with a request, from a `Cache-Status` member (RFC 9211 §2). */
export interface CacheStatusEntry {
  readonly cache: string;
  readonly isHit: boolean;
  /** Why the request went forward (`miss`, `uri-miss`, `stale`, `bypass`…), absent on a hit. */
  readonly fwd: string | undefined;
  /** The request waited on another request's in-flight fetch instead of making its own (RFC 9211 §2.6). */
  readonly isCollapsed: boolean;
  readonly ttlSeconds: number | undefined;
  /** The status the forwarded request got (`fwd-status`): 304 when the origin confirmed a stale entry. */
  readonly fwdStatus: number | undefined;
  readonly detail: string | undefined;
}

export type CacheOutcome = "hit" | "miss" | "collapsed" | "unknown";

/** Parses `Cache-Status: imagika; hit` / `imagika; fwd=miss; collapsed` (https://www.rfc-editor.org/rfc/rfc9211). */
export function parseCacheStatus(header: string | null | undefined): CacheStatusEntry[] {
  return parseHeaderList(header).map(({ token, params }) => {
    const fwd = params.get("fwd");
    const ttl = params.get("ttl");
    const detail = params.get("detail");
    const fwdStatus = params.get("fwd-status");
    return {
      cache: token,
      isHit: params.get("hit") === true,
      fwd: typeof fwd === "string" ? fwd : undefined,
      isCollapsed: params.get("collapsed") === true,
      ttlSeconds: typeof ttl === "string" && Number.isFinite(Number(ttl)) ? Number(ttl) : undefined,
      fwdStatus: typeof fwdStatus === "string" && /^\d{3}$/.test(fwdStatus) ? Number(fwdStatus) : undefined,
      detail: typeof detail === "string" ? detail : undefined,
    };
  });
}

/**
 * What the proxy's cache did: from its `Cache-Status` member (or the first member when none is named after it), or
 * else from a legacy `X-Cache: HIT|MISS`. A collapsed request is a miss that shared another request's work.
 */
export function cacheOutcome(cacheStatus: string | null | undefined, xCache?: string | null): CacheOutcome {
  const entries = parseCacheStatus(cacheStatus);
  const entry = entries.find((candidate) => candidate.cache === PROXY_CACHE_NAME) ?? entries[0];
  if (entry) {
    if (entry.isHit) return "hit";
    // A stale entry the origin confirmed (304), or served because the origin failed (5xx): the bytes came from the
    // cache, as X-Cache: HIT says; new bytes (200) are a miss.
    if (entry.fwd === "stale" && entry.fwdStatus !== undefined && (entry.fwdStatus === 304 || entry.fwdStatus >= 500))
      return "hit";
    if (entry.isCollapsed) return "collapsed";
    return entry.fwd !== undefined ? "miss" : "unknown";
  }
  const legacy = xCache?.trim().toUpperCase() ?? "";
  if (legacy.startsWith("HIT")) return "hit";
  if (legacy.startsWith("MISS")) return "miss";
  return "unknown";
}
