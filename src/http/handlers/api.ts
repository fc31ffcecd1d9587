import type { HttpRequest, Reply } from "../engine/reply.ts";
import { timingSafeEqual } from "node:crypto";
import { ProxyError } from "../../errors.ts";
import type { ImageProxy } from "../../proxy/image-proxy.ts";
import { parseImagePath } from "../path.ts";
import { sendJson } from "../respond.ts";

/** Relays the origin's listing (path, width, height, bytes, format of every original). */
export async function handleImages(res: Reply, listImages: () => Promise<Buffer>): Promise<void> {
  const body = await listImages();
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch (error) {
    throw new ProxyError("ORIGIN_FAILED", "the origin's listing is not valid JSON", { cause: error });
  }
  sendJson(res, 200, parsed, { "cache-control": "no-cache" });
}

/** Bearer check in constant time; false when the header is absent or wrong. */
function isAuthorized(req: HttpRequest, token: string): boolean {
  const header = req.headers.authorization ?? "";
  const match = /^Bearer\s+(.+)$/i.exec(header);
  if (!match?.[1]) return false;
  const given = Buffer.from(match[1].trim());
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * DELETE /api/cache (everything) and DELETE /api/cache/<path> (the original and all its variants). Without an admin
 * token configured the endpoints do not exist (404), so an unconfigured server exposes no purge at all.
 */
export async function handlePurge(
  req: HttpRequest,
  res: Reply,
  url: string,
  proxy: ImageProxy,
  adminToken: string,
): Promise<void> {
  if (adminToken === "") throw new ProxyError("NOT_FOUND", "no such endpoint");
  if (req.method !== "DELETE") {
    res.setHeader("allow", "DELETE");
    throw new ProxyError("METHOD_NOT_ALLOWED", "use DELETE to purge");
  }
  if (!isAuthorized(req, adminToken)) throw new ProxyError("UNAUTHORIZED", "a valid admin bearer token is required");
  const pathname = url.split("?")[0] ?? url;
  if (pathname === "/api/cache" || pathname === "/api/cache/") {
    sendJson(res, 200, { purged: await proxy.purgeAll() });
    return;
  }
  const path = parseImagePath(pathname.slice("/api/cache/".length));
  sendJson(res, 200, { path, purged: await proxy.purge(path) });
}
