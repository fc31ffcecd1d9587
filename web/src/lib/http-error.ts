/** The proxy's error body: `{ "error": "RATE_LIMITED", "message": "..." }`. */
export interface ErrorBody {
  readonly error: string | undefined;
  readonly message: string | undefined;
}

/** A failed response explained for people: a short title and one sentence of what to do. */
export interface HttpErrorDescription {
  readonly status: number;
  readonly code: string | undefined;
  readonly title: string;
  readonly detail: string;
  readonly retryAfterSeconds: number | undefined;
}

/** Reads the proxy's JSON error body; anything else (HTML from a gateway, empty) gives empty fields. */
export function parseErrorBody(text: string): ErrorBody {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === "object" && value !== null) {
      const record = value as Record<string, unknown>;
      return {
        error: typeof record.error === "string" ? record.error : undefined,
        message: typeof record.message === "string" ? record.message : undefined,
      };
    }
  } catch {
    // Not JSON: fall through.
  }
  return { error: undefined, message: undefined };
}

/** `Retry-After` as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(header: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  if (!header) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const dateMs = Date.parse(text);
  if (Number.isNaN(dateMs)) return undefined;
  return Math.max(0, Math.ceil((dateMs - nowMs) / 1000));
}

/** Title and advice for an error status from the proxy; the body's message, when present, is the detail. */
export function describeHttpError(status: number, body: ErrorBody, retryAfterSeconds?: number): HttpErrorDescription {
  const fallback = describeStatus(status, retryAfterSeconds);
  return {
    status,
    code: body.error,
    title: fallback.title,
    detail: body.message ?? fallback.detail,
    retryAfterSeconds,
  };
}

function describeStatus(status: number, retryAfterSeconds: number | undefined): { title: string; detail: string } {
  switch (status) {
    case 0:
      return { title: "Proxy unreachable", detail: "The request never got an answer: is the proxy running?" };
    case 400:
      return { title: "Invalid options", detail: "The proxy refused these transform options." };
    case 401:
    case 403:
      return { title: "Not allowed", detail: "The proxy refused this request." };
    case 404:
      return { title: "Not found", detail: "The origin has no such image." };
    case 413:
      return { title: "Original too large", detail: "The original exceeds the proxy's byte or pixel limit." };
    case 422:
      return { title: "Unsupported image", detail: "The proxy cannot decode this original." };
    case 429:
      return {
        title: "Rate limited",
        detail:
          retryAfterSeconds === undefined
            ? "Too many requests from this client; wait a moment."
            : `Too many requests from this client; retry in ${retryAfterSeconds} s.`,
      };
    case 502:
      return { title: "Origin down", detail: "The origin server failed or could not be reached." };
    case 503:
      return { title: "Proxy overloaded", detail: "Too many transforms are queued; the proxy shed this request." };
    case 504:
      return { title: "Origin timed out", detail: "The origin did not answer in time." };
    default:
      return status >= 500
        ? { title: `Server error (${status})`, detail: "The proxy failed to handle this request." }
        : { title: `Request failed (${status})`, detail: "The proxy refused this request." };
  }
}

/** Reads a failed `Response` into a description (consumes its body). */
export async function describeResponseError(response: Response): Promise<HttpErrorDescription> {
  const text = await response.text().catch(() => "");
  return describeHttpError(response.status, parseErrorBody(text), parseRetryAfter(response.headers.get("Retry-After")));
}
