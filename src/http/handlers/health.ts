import type { Reply } from "../engine/reply.ts";
import { ProxyError } from "../../errors.ts";
import { sendJson } from "../respond.ts";

/** Liveness: the process answers. */
export function handleHealth(res: Reply): void {
  sendJson(res, 200, { status: "ok" }, { "cache-control": "no-store" });
}

/**
 * Readiness: the origin has answered once since start, and the process is not shutting down; otherwise rejects with a
 * 503 ProxyError. Once is enough: a probe that followed the origin would take every instance out of the balancer
 * during an origin outage, hits and stale-if-error answers with them (and a hanging origin would outlast the probe's
 * timeout), while the first answer still keeps an instance with a wrong origin out of a rolling update.
 */
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
    throw new ProxyError("ORIGIN_UNREACHABLE", `${message} (it has not answered since start)`, { cause: error });
  }
  sendJson(res, 200, { status: "ready" }, { "cache-control": "no-store" });
}

/** `check` until it first succeeds; from then on a check that passes at once (see handleReady). */
export function untilFirstSuccess(check: () => Promise<void>): () => Promise<void> {
  let hasSucceeded = false;
  return async () => {
    if (hasSucceeded) return;
    await check();
    hasSucceeded = true;
  };
}
