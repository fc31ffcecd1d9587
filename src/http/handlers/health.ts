import type { Reply } from "../engine/reply.ts";
import { ProxyError } from "../../errors.ts";
import { sendJson } from "../respond.ts";

/** Liveness: the process answers. */
export function handleHealth(res: Reply): void {
  sendJson(res, 200, { status: "ok" }, { "cache-control": "no-store" });
}

/** Readiness: the origin answers and the process is not shutting down; otherwise rejects with a 503 ProxyError. */
export async function handleReady(
  res: Reply,
  isShuttingDown: boolean,
  checkOrigin: () => Promise<void>,
): Promise<void> {
  if (isShuttingDown) throw new ProxyError("SHUTTING_DOWN", "the proxy is shutting down");
  try {
    await checkOrigin();
  } catch (error) {
    const message = error instanceof ProxyError ? error.message : "the origin is unreachable";
    throw new ProxyError("ORIGIN_UNREACHABLE", message, { cause: error });
  }
  sendJson(res, 200, { status: "ready" }, { "cache-control": "no-store" });
}
