import { describeResponseError, type HttpErrorDescription } from "./http-error.ts";

/** A variant fetched for the viewer: its bytes as an object URL plus what the proxy said about it. */
export interface FetchedVariant {
  readonly isOk: true;
  readonly url: string;
  /** `blob:` URL for the `<img>`; revoke it when done. */
  readonly objectUrl: string;
  readonly bytes: number;
  readonly contentType: string | null;
  readonly cacheStatus: string | null;
  readonly xCache: string | null;
  readonly serverTiming: string | null;
  /** Request start to last byte, as the page saw it. */
  readonly durationMs: number;
}

export interface FailedVariant {
  readonly isOk: false;
  readonly url: string;
  readonly error: HttpErrorDescription;
}

/**
 * Fetches with `cache: "no-store"` so the headers describe what the proxy did now, not a copy from the browser's
 * cache; the `Accept` header matches what an `<img>` would send so `f=auto` negotiates the same format.
 */
export async function fetchVariant(
  url: string,
  accept: string,
  signal: AbortSignal,
): Promise<FetchedVariant | FailedVariant> {
  const started = performance.now();
  let response: Response;
  try {
    response = await fetch(url, { cache: "no-store", headers: { Accept: accept }, signal });
  } catch (error) {
    if (signal.aborted) throw error;
    return {
      isOk: false,
      url,
      error: {
        status: 0,
        code: undefined,
        title: "Proxy unreachable",
        detail: "The request never got an answer: is the proxy running?",
        retryAfterSeconds: undefined,
      },
    };
  }
  if (!response.ok) return { isOk: false, url, error: await describeResponseError(response) };
  const blob = await response.blob();
  return {
    isOk: true,
    url,
    objectUrl: URL.createObjectURL(blob),
    bytes: blob.size,
    contentType: response.headers.get("Content-Type") ?? (blob.type || null),
    cacheStatus: response.headers.get("Cache-Status"),
    xCache: response.headers.get("X-Cache"),
    // The Resource Timing API is the browser's own record (it needs Timing-Allow-Origin, which the proxy sends);
    // the header is the fallback when the entry is not there yet or the buffer is full.
    serverTiming: serverTimingFromResourceTiming(url) ?? response.headers.get("Server-Timing"),
    durationMs: performance.now() - started,
  };
}

/** Server-Timing of the latest Resource Timing entry for `url`, in header syntax; null when there is none. */
export function serverTimingFromResourceTiming(url: string): string | null {
  if (typeof performance.getEntriesByName !== "function") return null;
  const absolute = new URL(url, globalThis.location?.href ?? "http://localhost/").href;
  const entries = performance.getEntriesByName(absolute, "resource") as PerformanceResourceTiming[];
  const timings = entries.at(-1)?.serverTiming ?? [];
  if (timings.length === 0) return null;
  return timings
    .map(
      (t) => `${t.name}${t.duration > 0 ? `;dur=${t.duration}` : ""}${t.description ? `;desc="${t.description}"` : ""}`,
    )
    .join(", ");
}
