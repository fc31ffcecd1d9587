/**
 * Told how large a body is as soon as that is known: its declared length (Content-Length, S3's ContentLength, the
 * file's size), then, if more bytes come than declared or none was, the bytes received so far. The memory budget
 * resizes the download's lease with it.
 */
export type SizeListener = (bytes: number) => void;

/** The seam between the proxy and wherever originals live (HTTP origin, local directory, S3). */
export interface Fetcher {
  /** e.g. "http://127.0.0.1:8081/photos/" or "file:///srv/images"; for logs and /readyz. */
  readonly description: string;
  /**
   * Fetches the original at `path` (decoded segments joined by "/", already validated by http/path.ts: no "..",
   * no empty segments, no NUL, no backslash). Rejects with ProxyError: ORIGIN_NOT_FOUND, ORIGIN_FORBIDDEN,
   * SOURCE_TOO_LARGE (more than maxSourceBytes, checked while streaming), ORIGIN_TIMEOUT or ORIGIN_FAILED.
   */
  fetchOriginal(path: string, signal?: AbortSignal, onSize?: SizeListener): Promise<Buffer>;
  /** Resolves when the origin answers; rejects with a ProxyError otherwise. */
  checkReady(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
