import type { Reply } from "./engine/reply.ts";
import { ProxyError } from "../errors.ts";
import type { Logger } from "../log.ts";

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
 * The only place errors become HTTP: a ProxyError keeps its status and code; anything else is logged with its
 * stack and answered 500 INTERNAL without details. Error responses carry no Cache-Control, so nothing caches them.
 */
export function sendError(res: Reply, error: unknown, log: Logger, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const extra: Record<string, string> = { ...headers };
  if (error instanceof ProxyError) {
    if (error.retryAfterSeconds !== undefined) extra["retry-after"] = String(error.retryAfterSeconds);
    if (error.status >= 500) log.warn({ code: error.code, err: error.cause ?? error }, error.message);
    sendJson(res, error.status, { error: error.code, message: error.message }, extra);
    return;
  }
  log.error({ err: error }, "unexpected error");
  sendJson(res, 500, { error: "INTERNAL", message: "an unexpected error occurred" }, extra);
}
