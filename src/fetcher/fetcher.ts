/** The seam between the proxy and wherever originals live (HTTP origin, local directory, S3). */
export interface Fetcher {
  /** e.g. "http://127.0.0.1:8081/photos/" or "file:///srv/images"; for logs and /readyz. */
  readonly description: string;
  /**
   * Fetches the original at `path` (decoded segments joined by "/", already validated by http/path.ts: no "..",
   * no empty segments, no NUL, no backslash). Rejects with ProxyError: ORIGIN_NOT_FOUND, ORIGIN_FORBIDDEN,
   * SOURCE_TOO_LARGE (more than maxSourceBytes, checked while streaming), ORIGIN_TIMEOUT or ORIGIN_FAILED.
   */
  fetchOriginal(path: string, signal?: AbortSignal): Promise<Buffer>;
  /** Resolves when the origin answers; rejects with a ProxyError otherwise. */
  checkReady(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
