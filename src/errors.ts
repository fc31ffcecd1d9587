/** One stable error code: its HTTP status, the headers every response with it carries, and one line for the docs. */
interface ErrorSpec {
  readonly status: number;
  readonly description: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Every error the proxy answers with, by status. Only http/respond.ts turns them into responses; README.md's error
 * table is generated from this one (`npm run docs`, renderErrorTable).
 */
export const ERRORS = {
  INVALID_OPTIONS: { status: 400, description: "an unknown, repeated or malformed option (the message names it)" },
  INVALID_PATH: { status: 400, description: "an image path that is empty, badly encoded or leaves the origin's root" },
  BODY_NOT_ALLOWED: { status: 400, description: "an image request that announces a body" },
  BAD_REQUEST: {
    status: 400,
    description: "not valid HTTP/1.1 (the parser's reason in the message); the connection is closed",
  },
  UNAUTHORIZED: {
    status: 401,
    description: "`DELETE /api/cache` without the `--admin-token` bearer token (with `WWW-Authenticate`)",
    headers: { "www-authenticate": 'Bearer realm="imagika-admin"' },
  },
  BAD_SIGNATURE: { status: 403, description: "with `--signing-key`: the signature is missing, wrong or expired" },
  FORBIDDEN: {
    status: 403,
    description: "remote mode: the source is off, not allowed, private, or carries credentials",
  },
  ORIGIN_FORBIDDEN: { status: 403, description: "the origin refused access to the original" },
  NOT_FOUND: { status: 404, description: "no such endpoint (or one this configuration leaves out)" },
  ORIGIN_NOT_FOUND: {
    status: 404,
    description: "the origin has no such original (remembered for `--negative-ttl-seconds`)",
  },
  METHOD_NOT_ALLOWED: { status: 405, description: "a method the endpoint does not take (with `Allow`)" },
  REQUEST_TIMEOUT: {
    status: 408,
    description:
      "the request head was not complete within `--headers-timeout-ms` (or `--request-timeout-ms`); the connection is closed",
  },
  SOURCE_TOO_LARGE: { status: 413, description: "the original is above `--max-source-bytes` or `--max-source-pixels`" },
  URI_TOO_LONG: { status: 414, description: "the request target is over 8 KiB; the connection is closed" },
  NOT_AN_IMAGE: {
    status: 415,
    description: "the original is not an image format the proxy serves (SVG only with `--allow-svg`)",
  },
  RANGE_NOT_SATISFIABLE: {
    status: 416,
    description: "a `Range` that starts past the end of the image (with `Content-Range: bytes */<size>`)",
  },
  UNSUPPORTED_IMAGE: { status: 422, description: "the original is corrupt, truncated or has no pixels" },
  RATE_LIMITED: { status: 429, description: "the client's token bucket is empty (with `Retry-After`)" },
  HEADERS_TOO_LARGE: {
    status: 431,
    description: "the request head is over 16 KiB or 1,000 lines; the connection is closed",
  },
  INTERNAL: { status: 500, description: "a bug: logged with its stack, answered without details" },
  ORIGIN_FAILED: { status: 502, description: "the origin failed, broke the connection or sent something invalid" },
  OVERLOADED: { status: 503, description: "the transform or origin-fetch queue is full (with `Retry-After`)" },
  TRANSFORM_TIMEOUT: { status: 503, description: "the transform ran past `--transform-timeout-ms`" },
  SHUTTING_DOWN: { status: 503, description: "`/readyz` while the proxy shuts down" },
  ORIGIN_UNREACHABLE: { status: 503, description: "`/readyz` until the origin has answered once since start" },
  ORIGIN_TIMEOUT: { status: 504, description: "the origin did not answer within its time limits" },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export interface ProxyErrorOptions extends ErrorOptions {
  /** Seconds a client should wait before retrying (429, 503): sent as Retry-After. */
  readonly retryAfterSeconds?: number;
  /** Headers this response needs beyond its code's, such as a 416's Content-Range. */
  readonly headers?: Readonly<Record<string, string>>;
  /** The status the origin answered with, when its answer is the failure (ORIGIN_FAILED from a 500). */
  readonly originStatus?: number;
}

export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryAfterSeconds: number | undefined;
  /** The code's headers (ERRORS), then this error's own. */
  readonly headers: Readonly<Record<string, string>>;
  /** See ProxyErrorOptions.originStatus: what RFC 9211's `fwd-status` reports when a stale entry answers instead. */
  readonly originStatus: number | undefined;
  constructor(code: ErrorCode, message: string, options?: ProxyErrorOptions) {
    super(message, options);
    this.name = "ProxyError";
    this.code = code;
    const spec: ErrorSpec = ERRORS[code];
    this.status = spec.status;
    this.retryAfterSeconds = options?.retryAfterSeconds;
    this.originStatus = options?.originStatus;
    this.headers = { ...spec.headers, ...options?.headers };
  }
}

export function isProxyError(error: unknown): error is ProxyError {
  return error instanceof ProxyError;
}

/** Where README.md's error table sits (scripts/gen-docs.ts replaces what is between). */
export const ERROR_TABLE_MARKERS = {
  begin: "<!-- BEGIN GENERATED ERRORS (npm run docs) -->",
  end: "<!-- END GENERATED ERRORS -->",
} as const;

/** README.md's error table: one row per code, by status, padded as Prettier pads Markdown tables. */
export function renderErrorTable(): string {
  const rows = Object.entries(ERRORS as Record<ErrorCode, ErrorSpec>)
    .sort(([, a], [, b]) => a.status - b.status)
    .map(([code, spec]) => [String(spec.status), `\`${code}\``, spec.description]);
  const header = ["status", "code", "when"];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length))); // i < 3
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)].join("\n");
}
