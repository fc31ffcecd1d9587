import type { Reply } from "../engine/reply.ts";
import { ProxyError } from "../../errors.ts";
import { sendJson } from "../respond.ts";

/** Liveness: the process answers. */
export function handleHealth(res: Reply): void {
  sendJson(res, 200, { status: "ok" }, { "cache-control": "no-store" });
}

/** Readiness: the origin answers and the process is not shutting down. */
export async function handleReady(
  res: Reply,
  isShuttingDown: boolean,
  checkOrigin: () => Promise<void>,
): Promise<void> {
  if (isShuttingDown) {
    sendJson(res, 503, { error: "SHUTTING_DOWN", message: "the proxy is shutting down" });
    return;
  }
  try {
    await checkOrigin();
    sendJson(res, 200, { status: "ready" }, { "cache-control": "no-store" });
  } catch (error) {
    const message = error instanceof ProxyError ? error.message : "the origin is unreachable";
    sendJson(res, 503, { error: "ORIGIN_UNREACHABLE", message });
  }
}
