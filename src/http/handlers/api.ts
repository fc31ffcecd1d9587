import type { HttpRequest, Reply } from "../engine/reply.ts";
import { timingSafeEqual } from "node:crypto";
import { ProxyError } from "../../errors.ts";
import type { ImageProxy, PurgeScope } from "../../proxy/image-proxy.ts";
import type { OptionRules } from "../../transform/options.ts";
import { MAX_PATH_LENGTH, parseImagePath } from "../path.ts";
import { sendJson } from "../respond.ts";
import { remoteSource } from "./image.ts";

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

/**
 * GET /api/presets: the --presets entries in file order, as written (`{ name, options }`), and whether the proxy
 * accepts nothing else (--presets-only). Anyone may ask for `p=<name>` anyway; the list lets a UI offer them.
 */
export function presetListing(rules: OptionRules): unknown {
  const presets = [...(rules.presets?.values() ?? [])].map(({ name, query }) => ({ name, options: query }));
  return { presets, presetsOnly: rules.isPresetsOnly === true };
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

/** What `DELETE /api/cache?<query>` may say; anything else is refused rather than read as "everything". */
const PURGE_PARAMETERS = "prefix=<path prefix> or url=<absolute URL>";
const PURGE_PARAMETER_NAMES: ReadonlySet<string> = new Set(["prefix", "url"]);

interface PurgeTarget {
  readonly scope: PurgeScope;
  /** What the response names beside the count. */
  readonly echo: { readonly prefix: string } | { readonly url: string };
}

/** The target of `DELETE /api/cache?<query>`: exactly one known parameter, given once, not empty. */
function purgeTargetOfQuery(query: string): PurgeTarget {
  if (query === "") {
    throw new ProxyError("INVALID_OPTIONS", "an empty query ('?') names nothing: DELETE /api/cache purges everything");
  }
  const params = new URLSearchParams(query);
  const names = new Set<string>();
  for (const name of params.keys()) {
    if (!PURGE_PARAMETER_NAMES.has(name)) {
      throw new ProxyError(
        "INVALID_OPTIONS",
        `unknown purge parameter ${JSON.stringify(name.slice(0, 32))}; DELETE /api/cache takes ${PURGE_PARAMETERS}`,
      );
    }
    if (names.has(name)) throw new ProxyError("INVALID_OPTIONS", `${name} is given more than once`);
    names.add(name);
  }
  if (names.size > 1) throw new ProxyError("INVALID_OPTIONS", `give one of ${PURGE_PARAMETERS}, not both`);
  // A remote source is cached under its normalised URL (its "path"): purge exactly that one.
  if (names.has("url")) {
    const url = remoteSource(params);
    return { scope: { kind: "path", path: url }, echo: { url } };
  }
  const prefix = params.get("prefix") ?? "";
  if (prefix === "")
    throw new ProxyError("INVALID_OPTIONS", "prefix is empty: DELETE /api/cache without a query purges everything");
  if (prefix.length > MAX_PATH_LENGTH)
    throw new ProxyError("INVALID_OPTIONS", `prefix is longer than ${MAX_PATH_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex -- no cached path contains control characters (http/path.ts refuses them)
  if (/[\u0000-\u001f\u007f]/.test(prefix))
    throw new ProxyError("INVALID_OPTIONS", "prefix contains control characters");
  return { scope: { kind: "prefix", prefix }, echo: { prefix } };
}

/**
 * DELETE /api/cache (everything: no query at all), DELETE /api/cache/<path> (the original and all its variants; no
 * query), DELETE /api/cache?prefix=<path prefix> (every path starting with it) and DELETE /api/cache?url=<absolute
 * URL> (one remote source, normalised as /img?url= does). Any other query, and the empty path of `/api/cache/`, is a
 * 400: a purge that misread its target used to empty the whole cache. Without an admin token configured the
 * endpoints do not exist (404), so an unconfigured server exposes no purge at all.
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
  const queryAt = url.indexOf("?");
  const pathname = queryAt < 0 ? url : url.slice(0, queryAt);
  const query = queryAt < 0 ? undefined : url.slice(queryAt + 1);
  if (pathname === "/api/cache") {
    if (query === undefined) {
      sendJson(res, 200, { purged: await proxy.purge({ kind: "all" }) });
      return;
    }
    const { scope, echo } = purgeTargetOfQuery(query);
    sendJson(res, 200, { ...echo, purged: await proxy.purge(scope) });
    return;
  }
  const raw = pathname.slice("/api/cache/".length);
  if (raw === "") {
    throw new ProxyError(
      "INVALID_PATH",
      "the purge names no image: DELETE /api/cache/<path> for one, DELETE /api/cache for everything",
    );
  }
  if (query !== undefined)
    throw new ProxyError("INVALID_OPTIONS", "DELETE /api/cache/<path> takes no query: the path is the whole target");
  const path = parseImagePath(raw);
  sendJson(res, 200, { path, purged: await proxy.purge({ kind: "path", path }) });
}
