import type { ProxyStats } from "./api.ts";

/** One poll of `/api/stats`, stamped with the page's clock. */
export interface StatsSample {
  readonly atMs: number;
  readonly requests: number;
  readonly hits: number;
  readonly misses: number;
  /** The proxy's resident memory at that poll. */
  readonly rssBytes: number;
}

/** One point of the live charts: rates over the interval that ends at `atMs`. */
export interface RatePoint {
  readonly atMs: number;
  readonly requestsPerSecond: number;
  /** Hits / lookups in the interval; `null` when the interval had no lookups (a gap, not a drop to 0). */
  readonly hitRatio: number | null;
}

/** 5 minutes of 1 s polls. */
export const HISTORY_WINDOW_MS = 5 * 60_000;

/** Appends a sample and drops the ones older than `windowMs` before it. */
export function appendSample(
  history: readonly StatsSample[],
  stats: Pick<ProxyStats, "requests" | "hits" | "misses" | "memory">,
  atMs: number,
  windowMs: number = HISTORY_WINDOW_MS,
): StatsSample[] {
  const next = history.filter((sample) => sample.atMs >= atMs - windowMs);
  next.push({
    atMs,
    requests: stats.requests,
    hits: stats.hits,
    misses: stats.misses,
    rssBytes: stats.memory.rssBytes,
  });
  return next;
}

/**
 * Rates between successive samples. Counters only grow, so a drop means the proxy restarted: that interval is
 * skipped rather than charted as a negative rate.
 */
export function deriveRates(history: readonly StatsSample[]): RatePoint[] {
  const points: RatePoint[] = [];
  for (let i = 1; i < history.length; i += 1) {
    const previous = history[i - 1];
    const current = history[i];
    if (!previous || !current) continue;
    const seconds = (current.atMs - previous.atMs) / 1000;
    const requests = current.requests - previous.requests;
    const hits = current.hits - previous.hits;
    const lookups = hits + (current.misses - previous.misses);
    if (seconds <= 0 || requests < 0 || hits < 0 || lookups < 0) continue;
    points.push({
      atMs: current.atMs,
      requestsPerSecond: requests / seconds,
      hitRatio: lookups > 0 ? hits / lookups : null,
    });
  }
  return points;
}
