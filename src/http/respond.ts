import type { Reply } from "./engine/reply.ts";
import { ProxyError } from "../errors.ts";
import type { Logger } from "../observability/log.ts";

/** Sends a small JSON body. */
export function sendJson(res: Reply, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "x-content-type-options": "nosniff",
    ...headers,
  });
  res.end(res.req.method === "HEAD" ? undefined : text);
}

/**
 * The only place errors become HTTP: a ProxyError is answered with its code's status (errors.ts), its headers and
 * `{ "error": code, "message": message }`; anything else is logged with its stack and answered 500 INTERNAL without
 * details. Error responses carry no Cache-Control, so nothing caches them.
 */
export function sendError(res: Reply, error: unknown, log: Logger, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  let known: ProxyError;
  if (error instanceof ProxyError) {
    known = error;
    if (known.status >= 500) log.warn({ code: known.code, err: known.cause ?? known }, known.message);
  } else {
    log.error({ err: error }, "unexpected error");
    known = new ProxyError("INTERNAL", "an unexpected error occurred");
  }
  const extra: Record<string, string> = { ...headers, ...known.headers };
  if (known.retryAfterSeconds !== undefined) extra["retry-after"] = String(known.retryAfterSeconds);
  sendJson(res, known.status, { error: known.code, message: known.message }, extra);
}
