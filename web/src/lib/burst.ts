import { cacheOutcome } from "./cache-status.ts";
import { parseRetryAfter } from "./http-error.ts";
import { imageUrl, type ImageOptions } from "./image-url.ts";

/** How one request of a burst ended. `network` = no HTTP response at all. */
export type BurstOutcomeKind = "served" | "coalesced" | "rateLimited" | "overloaded" | "failed" | "network";

export interface BurstOutcome {
  readonly kind: BurstOutcomeKind;
  readonly status: number;
  readonly isHit: boolean;
  readonly durationMs: number;
  readonly retryAfterSeconds: number | undefined;
}

/** Counts of a finished burst, as the page shows them. */
export interface BurstSummary {
  readonly total: number;
  /** Every 200, including coalesced ones and cache hits. */
  readonly ok: number;
  readonly hits: number;
  readonly coalesced: number;
  readonly rateLimited: number;
  readonly overloaded: number;
  /** Other HTTP errors (502, 504, 400…) by status. */
  readonly otherErrors: ReadonlyMap<number, number>;
  readonly networkErrors: number;
  readonly wallMs: number;
  readonly slowestMs: number;
  readonly retryAfterSeconds: number | undefined;
}

/** Sorts a response into the burst's buckets: 429 rate limited, 503 shed, a collapsed 200 coalesced. */
export function classifyResponse(status: number, cacheStatus: string | null): BurstOutcomeKind {
  if (status === 0) return "network";
  if (status === 429) return "rateLimited";
  if (status === 503) return "overloaded";
  if (status < 200 || status >= 300) return "failed";
  return cacheOutcome(cacheStatus) === "collapsed" ? "coalesced" : "served";
}

export function summarizeBurst(outcomes: readonly BurstOutcome[], wallMs: number): BurstSummary {
  const otherErrors = new Map<number, number>();
  let ok = 0;
  let hits = 0;
  let coalesced = 0;
  let rateLimited = 0;
  let overloaded = 0;
  let networkErrors = 0;
  let slowestMs = 0;
  let retryAfterSeconds: number | undefined;
  for (const outcome of outcomes) {
    slowestMs = Math.max(slowestMs, outcome.durationMs);
    if (outcome.status >= 200 && outcome.status < 300) ok += 1;
    if (outcome.isHit) hits += 1;
    switch (outcome.kind) {
      case "coalesced":
        coalesced += 1;
        break;
      case "rateLimited":
        rateLimited += 1;
        if (outcome.retryAfterSeconds !== undefined) {
          retryAfterSeconds = Math.max(retryAfterSeconds ?? 0, outcome.retryAfterSeconds);
        }
        break;
      case "overloaded":
        overloaded += 1;
        break;
      case "failed":
        otherErrors.set(outcome.status, (otherErrors.get(outcome.status) ?? 0) + 1);
        break;
      case "network":
        networkErrors += 1;
        break;
      case "served":
        break;
    }
  }
  return {
    total: outcomes.length,
    ok,
    hits,
    coalesced,
    rateLimited,
    overloaded,
    otherErrors,
    networkErrors,
    wallMs,
    slowestMs,
    retryAfterSeconds,
  };
}

/** `same`: N requests for one variant nobody asked for yet (shows coalescing); `distinct`: N different variants. */
export type BurstMode = "same" | "distinct";

/** Smallest width a burst asks for: small variants keep the burst about the proxy, not about bandwidth. */
const BURST_BASE_WIDTH = 64;

/**
 * The N variant URLs of a burst. `seed` picks widths not used by earlier bursts (so `same` is a cold miss each
 * time); widths stay below `maxWidth` and cycle when N is larger than the spread available.
 */
export function burstUrls(
  path: string,
  count: number,
  mode: BurstMode,
  seed: number,
  maxWidth: number,
  options: Omit<ImageOptions, "w"> = { f: "auto" },
): string[] {
  const spread = Math.max(1, Math.min(maxWidth, 1024) - BURST_BASE_WIDTH);
  const widthAt = (offset: number): number => BURST_BASE_WIDTH + ((((seed + offset) % spread) + spread) % spread);
  const urls: string[] = [];
  for (let i = 0; i < count; i += 1) {
    urls.push(imageUrl(path, { ...options, w: widthAt(mode === "same" ? 0 : i) }));
  }
  return urls;
}

/** Fires every URL at once (`cache: "no-store"`, so the browser cache cannot answer) and waits for all of them. */
export async function runBurst(urls: readonly string[], accept: string): Promise<BurstSummary> {
  const started = performance.now();
  const outcomes = await Promise.all(urls.map((url) => fetchOne(url, accept)));
  return summarizeBurst(outcomes, performance.now() - started);
}

async function fetchOne(url: string, accept: string): Promise<BurstOutcome> {
  const started = performance.now();
  try {
    const response = await fetch(url, { cache: "no-store", headers: { Accept: accept } });
    await response.arrayBuffer(); // drain the body so the connection is free for the next request
    const cacheStatus = response.headers.get("Cache-Status");
    return {
      kind: classifyResponse(response.status, cacheStatus),
      status: response.status,
      isHit: cacheOutcome(cacheStatus, response.headers.get("X-Cache")) === "hit",
      durationMs: performance.now() - started,
      retryAfterSeconds: parseRetryAfter(response.headers.get("Retry-After")),
    };
  } catch {
    return {
      kind: "network",
      status: 0,
      isHit: false,
      durationMs: performance.now() - started,
      retryAfterSeconds: undefined,
    };
  }
}
