/**
 * Told how large a body is as soon as that is known: its declared length (Content-Length, S3's ContentLength, the
 * file's size), then, if more bytes come than declared or none was, the bytes received so far. The memory budget
 * resizes the download's lease with it.
 */
export type SizeListener = (bytes: number) => void;

/**
 * The origin's validators of one original (RFC 9110 §8.8): sent back as If-None-Match (else If-Modified-Since) to ask
 * whether the bytes changed. A directory origin makes its ETag from the file's size and mtime.
 */
export interface Validators {
  readonly etag?: string | undefined;
  readonly lastModified?: string | undefined;
}

/** What the origin said about caching an original (RFC 9111 §5.2), already read from its headers. */
export interface OriginCaching {
  readonly validators: Validators;
  /**
   * Seconds the original stays fresh from now: `s-maxage`, else `max-age`, else `Expires` − `Date`, each minus
   * `Age`; undefined when the origin said none of them (then --cache-ttl-seconds applies).
   */
  readonly lifetimeSeconds: number | undefined;
  /** `no-store` or `private`: a shared cache must not keep it. */
  readonly isNoStore: boolean;
  /** `must-revalidate`, `proxy-revalidate` or `no-cache`: never served stale, not even while the origin is down. */
  readonly mustRevalidate: boolean;
}

/** No caching headers at all (a directory origin; tests). */
export const NO_CACHING: OriginCaching = Object.freeze({
  validators: Object.freeze({}),
  lifetimeSeconds: undefined,
  isNoStore: false,
  mustRevalidate: false,
});

/** The origin's answer: the bytes (200), or, to a conditional request, "not modified" (304). */
export type OriginReply =
  | { readonly status: 200; readonly body: Buffer; readonly caching: OriginCaching }
  | { readonly status: 304; readonly body?: undefined; readonly caching: OriginCaching };

export interface FetchOptions {
  readonly signal?: AbortSignal | undefined;
  readonly onSize?: SizeListener | undefined;
  /** Ask conditionally: If-None-Match with the ETag, else If-Modified-Since with Last-Modified. */
  readonly validators?: Validators | undefined;
}

/** The seam between the proxy and wherever originals live (HTTP origin, local directory, S3). */
export interface Fetcher {
  /** e.g. "http://127.0.0.1:8081/photos/" or "file:///srv/images"; for logs and /readyz. */
  readonly description: string;
  /**
   * Fetches the original at `path` (decoded segments joined by "/", already validated by http/path.ts: no "..",
   * no empty segments, no NUL, no backslash), or only learns it did not change (304) when `validators` still match.
   * Rejects with ProxyError: ORIGIN_NOT_FOUND, ORIGIN_FORBIDDEN, SOURCE_TOO_LARGE (more than maxSourceBytes, checked
   * while streaming), ORIGIN_TIMEOUT or ORIGIN_FAILED.
   */
  fetchOriginal(path: string, options?: FetchOptions): Promise<OriginReply>;
  /** Resolves when the origin answers; rejects with a ProxyError otherwise. */
  checkReady(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
