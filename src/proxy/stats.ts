/** Counters shared by the proxy and the HTTP layer; read by /api/stats (and later /metrics). */
export class ProxyStats {
  requests = 0;
  hits = 0;
  misses = 0;
  coalesced = 0;
  originFetches = 0;
  originErrors = 0;
  /** Origin failures by error code (ORIGIN_TIMEOUT, ORIGIN_FAILED, ...). */
  readonly originErrorsByCode = new Map<string, number>();
  negativeHits = 0;
  /** Conditional requests about a stale original that the origin answered 304 (the copy is fresh again). */
  revalidationsNotModified = 0;
  /** Requests about a stale original that the origin answered 200 (with the same bytes or new ones). */
  revalidationsModified = 0;
  /** Revalidations that failed (the origin down, timing out, or refusing). */
  revalidationsFailed = 0;
  /** Of the 200s: the origin had new bytes, so the original was replaced and its variants dropped everywhere. */
  originalsChanged = 0;
  /** Stale entries answered at once while one background revalidation refreshes them. */
  staleWhileRevalidate = 0;
  /** Stale entries answered because the origin failed (--stale-if-error-seconds). */
  staleIfError = 0;
  /** Entries removed by admin purges on this instance. */
  purgedEntries = 0;
  rateLimited = 0;
  /** Connections closed at once because their client already held --max-connections-per-client. */
  rejectedConnections = 0;
  /** Requests the HTTP engine refused before routing: malformed (400), too slow (408), too large (414, 431). */
  refusedRequests = 0;
  shed = 0;
  bytesServed = 0;
  /** What the originals behind every served image would have cost. */
  originalBytesEquivalent = 0;
  readonly startedAtMs = Date.now();
}
