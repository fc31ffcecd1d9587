import type { IncomingMessage, ServerResponse } from "node:http";
import { CONTENT_TYPES } from "../../image-format.ts";
import type { Metrics } from "../../metrics.ts";
import type { ImageProxy, ProxyResult } from "../../proxy/image-proxy.ts";
import type { ProxyStats } from "../../proxy/stats.ts";
import { parseTransformOptions } from "../../transform/options.ts";
import type { TransformOptions, TransformOptionsParser } from "../../transform/options.ts";
import { matchesIfNoneMatch, parseRange } from "../conditional.ts";
import { ProxyError } from "../../errors.ts";
import { parseImagePath } from "../path.ts";
import { sendJson } from "../respond.ts";
import { SIGNATURE_KEYS, verifySignature } from "../signature.ts";

export interface ImageHandlerOptions {
  readonly cacheControlMaxAge: number;
  readonly corsOrigin: string;
  /** Cross-Origin-Resource-Policy value, or "off". */
  readonly crossOriginResourcePolicy: string;
  readonly maxOutputDimension: number;
  /** Non-empty: every image URL must carry a valid `s` signature under one of these keys. */
  readonly signingKeys: readonly string[];
  /** Remote mode (`/img?url=`) is on. */
  readonly isRemoteEnabled: boolean;
  /** Parses (and remembers) the options of unsigned `/img/<path>?<options>` requests. */
  readonly queryParser: TransformOptionsParser;
}

const REMOTE_KEYS: ReadonlySet<string> = new Set(["url"]);
const SIGNED_REMOTE_KEYS: ReadonlySet<string> = new Set(["url", ...SIGNATURE_KEYS]);

/** Longest remote source URL accepted. */
const MAX_REMOTE_URL_LENGTH = 2048;

/** `/img?url=<absolute http(s) URL>`: the one source of a remote-mode request, normalised by WHATWG URL parsing. */
function remoteSource(params: URLSearchParams): string {
  const values = params.getAll("url");
  if (values.length !== 1 || values[0] === undefined || values[0] === "") {
    throw new ProxyError("INVALID_OPTIONS", "remote mode needs exactly one url=<absolute http(s) URL>");
  }
  if (values[0].length > MAX_REMOTE_URL_LENGTH) throw new ProxyError("INVALID_OPTIONS", "url is too long");
  let parsed: URL;
  try {
    parsed = new URL(values[0]);
  } catch {
    throw new ProxyError("INVALID_OPTIONS", "url is not an absolute URL");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new ProxyError("FORBIDDEN", "only http and https sources are allowed");
  if (parsed.username !== "" || parsed.password !== "")
    throw new ProxyError("FORBIDDEN", "source URLs may not carry credentials");
  parsed.hash = "";
  return parsed.href;
}

/** What the request log line reports about the cache. */
export type CacheOutcome = "hit" | "miss" | "collapsed";

/** Parses `/img/<path>?<options>`, asks the proxy, and answers with the variant (200, 206, 304 or HEAD). */
export function handleImage(
  req: IncomingMessage,
  res: ServerResponse,
  url: string,
  proxy: ImageProxy,
  stats: ProxyStats,
  metrics: Metrics,
  options: ImageHandlerOptions,
  started: number,
  extraHeaders: readonly string[],
): CacheOutcome | Promise<CacheOutcome> {
  const queryAt = url.indexOf("?");
  const query = queryAt < 0 ? "" : url.slice(queryAt + 1);
  const isRemote = !url.startsWith("/img/");
  if (isRemote && !options.isRemoteEnabled) {
    throw new ProxyError(
      "NOT_FOUND",
      "remote mode is off: use /img/<path> (or start the proxy with --allowed-sources)",
    );
  }
  const isSigned = options.signingKeys.length > 0;
  let path: string;
  let transform: TransformOptions | null;
  if (isRemote || isSigned) {
    // The query also carries the source URL or the signature: parsed in full every time.
    const params = new URLSearchParams(query);
    path = isRemote ? remoteSource(params) : parseImagePath(url.slice(5, queryAt < 0 ? undefined : queryAt)); // after "/img/"
    if (isSigned) verifySignature(isRemote ? "" : path, params, options.signingKeys, Date.now() / 1000);
    const ignored = isRemote ? (isSigned ? SIGNED_REMOTE_KEYS : REMOTE_KEYS) : SIGNATURE_KEYS;
    transform = query === "" ? null : parseTransformOptions(params, options, ignored);
  } else {
    path = parseImagePath(url.slice(5, queryAt < 0 ? undefined : queryAt)); // after "/img/"
    transform = query === "" ? null : options.queryParser.parse(query);
  }
  const request = { path, options: transform, accept: req.headers.accept };
  const hit = proxy.lookup(request);
  if (hit) {
    sendVariant(req, res, hit, stats, options, started, extraHeaders);
    return "hit";
  }
  return proxy.get(request).then((result) => {
    sendVariant(req, res, result, stats, options, started, extraHeaders);
    if (result.cacheStatus === "miss" && !result.collapsed) {
      const { originMs, queueMs, transformMs } = result.timings;
      if (originMs !== undefined) metrics.observeStage("origin", originMs);
      if (queueMs !== undefined) metrics.observeStage("queue", queueMs);
      if (transformMs !== undefined) metrics.observeStage("transform", transformMs);
    }
    return result.cacheStatus === "hit" ? "hit" : result.collapsed ? "collapsed" : "miss";
  });
}

function serverTiming(result: ProxyResult, started: number): string {
  if (result.cacheStatus === "hit") {
    // Hits (memory or a lower tier) have no stages: one template, no array.
    return `cache;desc="hit", total;dur=${(performance.now() - started).toFixed(2)}`;
  }
  const parts: string[] = [];
  const { originMs, queueMs, transformMs } = result.timings;
  if (result.collapsed) {
    // This request waited on another's fetch/transform: those stage times are not this response's (they can even
    // exceed its total), so only the wait is reported.
    parts.push('coalesced;desc="waited for another request"', `total;dur=${(performance.now() - started).toFixed(2)}`);
    return parts.join(", ");
  }
  if (queueMs !== undefined && queueMs > 0.05) parts.push(`queue;dur=${queueMs.toFixed(1)}`);
  if (originMs !== undefined) parts.push(`origin;dur=${originMs.toFixed(1)}`);
  if (transformMs !== undefined) parts.push(`transform;dur=${transformMs.toFixed(1)}`);
  parts.push(`total;dur=${(performance.now() - started).toFixed(2)}`);
  return parts.join(", ");
}

function sendVariant(
  req: IncomingMessage,
  res: ServerResponse,
  result: ProxyResult,
  stats: ProxyStats,
  options: ImageHandlerOptions,
  started: number,
  extraHeaders: readonly string[],
): void {
  const { variant } = result;
  const size = variant.body.byteLength;
  // A flat array is Node's cheapest way to set many headers at once.
  const headers: string[] = [
    "content-type",
    CONTENT_TYPES[variant.format],
    "etag",
    variant.etag,
    "cache-control",
    `public, max-age=${options.cacheControlMaxAge}`,
    "cache-status",
    result.cacheStatus === "hit"
      ? "imagika; hit"
      : result.collapsed
        ? "imagika; fwd=miss; collapsed"
        : "imagika; fwd=miss; stored",
    "x-cache",
    result.cacheStatus === "hit" ? "HIT" : "MISS",
    "server-timing",
    serverTiming(result, started),
    "accept-ranges",
    "bytes",
    "x-content-type-options",
    "nosniff",
    "content-security-policy",
    "default-src 'none'; sandbox",
  ];
  for (const header of extraHeaders) headers.push(header);
  if (result.varyAccept) headers.push("vary", "Accept");
  if (options.crossOriginResourcePolicy !== "off")
    headers.push("cross-origin-resource-policy", options.crossOriginResourcePolicy);
  if (options.corsOrigin !== "") {
    headers.push(
      "access-control-allow-origin",
      options.corsOrigin,
      "timing-allow-origin",
      options.corsOrigin,
      "access-control-expose-headers",
      "Cache-Status, X-Cache, Server-Timing, Content-Length, ETag, RateLimit, RateLimit-Policy, Retry-After",
    );
  }

  if (matchesIfNoneMatch(req.headers["if-none-match"], variant.etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const ifRange = req.headers["if-range"];
  const range =
    req.method === "GET" && (ifRange === undefined || ifRange === variant.etag)
      ? parseRange(req.headers.range, size)
      : { kind: "full" as const };
  if (range.kind === "unsatisfiable") {
    for (let i = 0; i + 1 < extraHeaders.length; i += 2) res.setHeader(extraHeaders[i]!, extraHeaders[i + 1]!); // pairs
    sendJson(
      res,
      416,
      { error: "RANGE_NOT_SATISFIABLE", message: `the image has ${size} bytes` },
      { "content-range": `bytes */${size}` },
    );
    return;
  }
  const isHead = req.method === "HEAD";
  if (range.kind === "partial") {
    const length = range.end - range.start + 1;
    headers.push("content-range", `bytes ${range.start}-${range.end}/${size}`, "content-length", String(length));
    res.writeHead(206, headers);
    res.end(variant.body.subarray(range.start, range.end + 1));
    stats.bytesServed += length;
    return;
  }
  headers.push("content-length", String(size));
  res.writeHead(200, headers);
  if (isHead) {
    res.end();
    return;
  }
  res.end(variant.body);
  stats.bytesServed += size;
  stats.originalBytesEquivalent += variant.originalBytes;
}
