/** Stable error codes and their HTTP status; only http/respond.ts turns them into responses. */
const STATUS = {
  INVALID_OPTIONS: 400,
  INVALID_PATH: 400,
  BODY_NOT_ALLOWED: 400,
  BAD_SIGNATURE: 403,
  FORBIDDEN: 403,
  ORIGIN_FORBIDDEN: 403,
  NOT_FOUND: 404,
  ORIGIN_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  RANGE_NOT_SATISFIABLE: 416,
  SOURCE_TOO_LARGE: 413,
  NOT_AN_IMAGE: 415,
  UNSUPPORTED_IMAGE: 422,
  RATE_LIMITED: 429,
  ORIGIN_FAILED: 502,
  OVERLOADED: 503,
  TRANSFORM_TIMEOUT: 503,
  SHUTTING_DOWN: 503,
  ORIGIN_TIMEOUT: 504,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof STATUS;

export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Seconds a client should wait before retrying (429, 503). */
  readonly retryAfterSeconds: number | undefined;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions & { retryAfterSeconds?: number }) {
    super(message, options);
    this.name = "ProxyError";
    this.code = code;
    this.status = STATUS[code];
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

export function isProxyError(error: unknown): error is ProxyError {
  return error instanceof ProxyError;
}
