import type { HttpRequest, Reply } from "../engine/reply.ts";
import { performance } from "node:perf_hooks";
import { CONTENT_TYPES } from "../../shared/image-format.ts";
import type { Metrics } from "../../observability/metrics.ts";
import type { ImageProxy, ProxyResult, Revalidation } from "../../proxy/image-proxy.ts";
import type { ProxyStats } from "../../proxy/stats.ts";
import { ACCEPT_CH, hintsVary } from "../../transform/client-hints.ts";
import type { ClientHintResolver } from "../../transform/client-hints.ts";
import { parseImageQuery } from "../../transform/options.ts";
import type { ImageQuery, OptionRules, TransformOptionsParser } from "../../transform/options.ts";
import { matchesIfNoneMatch, parseRange } from "../conditional.ts";
import { contentDisposition } from "../content-disposition.ts";
import { ProxyError } from "../../errors.ts";
import { parseImagePath } from "../path.ts";
import { renderHeaderLines } from "../header-lines.ts";
import { SIGNATURE_KEYS, verifySignature } from "../signature.ts";

export interface ImageHandlerOptions {
  /** The query vocabulary: limits, presets, allowed widths and qualities, client hints. */
  readonly rules: OptionRules;
  /** Non-empty: every image URL must carry a valid `s` signature under one of these keys. */
  readonly signingKeys: readonly string[];
  /** Remote mode (`/img?url=`) is on. */
  readonly isRemoteEnabled: boolean;
  /** Parses (and remembers) the options of unsigned `/img/<path>?<options>` requests. */
  readonly queryParser: TransformOptionsParser;
  /** Resolves w=auto and dpr=auto from the request's client hints. */
  readonly clientHints: ClientHintResolver;
  /** The headers every image response carries, rendered once by imageHeaderLines(). */
  readonly headerLines: string;
  /** The same for an original the origin marked no-store or private: no cache after the proxy keeps it either. */
  readonly noStoreHeaderLines: string;
}

/** RFC 9211 Cache-Status and X-Cache, by outcome. */
const HIT_LINES = "cache-status: imagika; hit\r\nx-cache: HIT\r\n";
const COLLAPSED_LINES = "cache-status: imagika; fwd=miss; collapsed\r\nx-cache: MISS\r\n";
const STORED_LINES = "cache-status: imagika; fwd=miss; stored\r\nx-cache: MISS\r\n";
/** A miss no tier kept (larger than --cache-max-entry-bytes, or produced while a purge ran). */
const MISS_LINES = "cache-status: imagika; fwd=miss\r\nx-cache: MISS\r\n";

/**
 * Cache-Status of a stale entry (RFC 9211 §2): served at once while revalidating, `hit` with its negative `ttl`;
 * revalidated, `fwd=stale` with the origin's answer (`fwd-status=304`, or `200` with the same or new bytes); served
 * because the origin failed, `fwd=stale` with the failing `fwd-status` and the negative `ttl`. X-Cache says MISS only
 * when the bytes are new.
 */
function revalidationLines(result: ProxyResult, revalidation: Revalidation): string {
  const ttl = revalidation.ttlSeconds === undefined ? "" : `; ttl=${revalidation.ttlSeconds}`;
  const collapsed = result.collapsed ? "; collapsed" : "";
  const fwd = `fwd=stale; fwd-status=${revalidation.fwdStatus ?? 200}`;
  switch (revalidation.kind) {
    case "stale":
      return `cache-status: imagika; hit${ttl}\r\nx-cache: HIT\r\n`;
    case "validated":
    case "error":
      return `cache-status: imagika; ${fwd}${ttl}${collapsed}\r\nx-cache: HIT\r\n`;
    case "replaced":
      return `cache-status: imagika; ${fwd}${ttl}${result.isStored ? "; stored" : ""}${collapsed}\r\nx-cache: MISS\r\n`;
  }
}

/** The headers that are the same on every image response, as validated lines (see header-lines.ts). */
export function imageHeaderLines(options: {
  readonly cacheControlMaxAge: number;
  readonly corsOrigin: string;
  /** Cross-Origin-Resource-Policy value, or "off". */
  readonly crossOriginResourcePolicy: string;
  /** --client-hints: ask browsers for the hints w=auto and dpr=auto read. */
  readonly hasClientHints: boolean;
  /** The origin said no-store or private (RFC 9111 §5.2.2.3, 5.2.2.7): pass that on instead of a public lifetime. */
  readonly isNoStore?: boolean;
}): string {
  const pairs = [
    "cache-control",
    options.isNoStore === true ? "private, no-store" : `public, max-age=${options.cacheControlMaxAge}`,
    "accept-ranges",
    "bytes",
    "x-content-type-options",
    "nosniff",
    "content-security-policy",
    "default-src 'none'; sandbox",
  ];
  if (options.crossOriginResourcePolicy !== "off")
    pairs.push("cross-origin-resource-policy", options.crossOriginResourcePolicy);
  if (options.hasClientHints) pairs.push("accept-ch", ACCEPT_CH);
  if (options.corsOrigin !== "") {
    pairs.push(
      "access-control-allow-origin",
      options.corsOrigin,
      "timing-allow-origin",
      options.corsOrigin,
      "access-control-expose-headers",
      "Cache-Status, X-Cache, Server-Timing, Content-Length, Content-Disposition, ETag, RateLimit, RateLimit-Policy, Retry-After",
    );
  }
  return renderHeaderLines(pairs);
}

const REMOTE_KEYS: ReadonlySet<string> = new Set(["url"]);
const SIGNED_REMOTE_KEYS: ReadonlySet<string> = new Set(["url", ...SIGNATURE_KEYS]);

/** Longest remote source URL accepted. */
const MAX_REMOTE_URL_LENGTH = 2048;

/**
 * `/img?url=<absolute http(s) URL>`: the one source of a remote-mode request, normalised by WHATWG URL parsing. Also
 * what `DELETE /api/cache?url=` purges, so both name a source by the same string.
 */
export function remoteSource(params: URLSearchParams): string {
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
  req: HttpRequest,
  res: Reply,
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
  let parsed: ImageQuery;
  if (isRemote || isSigned) {
    // The query also carries the source URL or the signature: parsed in full every time.
    const params = new URLSearchParams(query);
    path = isRemote ? remoteSource(params) : parseImagePath(url.slice(5, queryAt < 0 ? undefined : queryAt)); // after "/img/"
    if (isSigned) verifySignature(isRemote ? "" : path, params, options.signingKeys, Date.now() / 1000);
    const ignored = isRemote ? (isSigned ? SIGNED_REMOTE_KEYS : REMOTE_KEYS) : SIGNATURE_KEYS;
    parsed = query === "" ? NO_QUERY : parseImageQuery(params, options.rules, ignored);
  } else {
    path = parseImagePath(url.slice(5, queryAt < 0 ? undefined : queryAt)); // after "/img/"
    parsed = query === "" ? NO_QUERY : options.queryParser.parse(query);
  }
  let transform = parsed.options;
  let vary: string | undefined;
  if (transform !== null && (transform.isWidthAuto === true || transform.isDprAuto === true)) {
    vary = hintsVary(transform);
    const { headers } = req;
    transform = options.clientHints.resolve(transform, {
      secChWidth: headers["sec-ch-width"],
      width: headers.width,
      secChViewportWidth: headers["sec-ch-viewport-width"],
      secChDpr: headers["sec-ch-dpr"],
      dpr: headers.dpr,
    });
  }
  const request = { path, options: transform, accept: req.headers.accept };
  const delivery: Delivery = { path, isDownload: parsed.isDownload, hintsVary: vary };
  const hit = proxy.lookup(request);
  if (hit) {
    sendVariant(req, res, hit, delivery, stats, options, started, extraHeaders);
    return "hit";
  }
  return proxy.get(request).then((result) => {
    sendVariant(req, res, result, delivery, stats, options, started, extraHeaders);
    if (result.cacheStatus === "miss" && !result.collapsed) {
      const { originMs, queueMs, transformMs } = result.timings;
      if (originMs !== undefined) metrics.observeStage("origin", originMs);
      if (queueMs !== undefined) metrics.observeStage("queue", queueMs);
      if (transformMs !== undefined) metrics.observeStage("transform", transformMs, result.variant.format);
    }
    return result.cacheStatus === "hit" ? "hit" : result.collapsed ? "collapsed" : "miss";
  });
}

const NO_QUERY: ImageQuery = Object.freeze({ options: null, isDownload: false });

/** How a response presents what it delivers, beside the bytes. */
interface Delivery {
  /** The image path or remote URL: names the file in Content-Disposition. */
  readonly path: string;
  readonly isDownload: boolean;
  /** Client-hint headers the response depends on (Vary). */
  readonly hintsVary: string | undefined;
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
  req: HttpRequest,
  res: Reply,
  result: ProxyResult,
  delivery: Delivery,
  stats: ProxyStats,
  options: ImageHandlerOptions,
  started: number,
  extraHeaders: readonly string[],
): void {
  const { variant } = result;
  const size = variant.body.byteLength;
  // Every value below is safe on the wire without validation (see Reply.writeHeadLines): the content type comes from our
  // table, the ETag from our hash (entries read from disk or Redis are checked by the entry codec), the file name is
  // reduced to printable ASCII by contentDisposition, the rest are our own templates and numbers, and the request id
  // was matched against REQUEST_ID or made by randomUUID().
  const disposition = contentDisposition(delivery.path, variant.format, delivery.isDownload);
  let lines = `content-type: ${CONTENT_TYPES[variant.format]}\r\netag: ${variant.etag}\r\ncontent-disposition: ${disposition}\r\n${
    result.revalidation
      ? revalidationLines(result, result.revalidation)
      : result.cacheStatus === "hit"
        ? HIT_LINES
        : result.collapsed
          ? COLLAPSED_LINES
          : result.isStored
            ? STORED_LINES
            : MISS_LINES
  }server-timing: ${serverTiming(result, started)}\r\n`;
  const { hintsVary } = delivery;
  if (result.varyAccept) lines += hintsVary === undefined ? "vary: Accept\r\n" : `vary: Accept, ${hintsVary}\r\n`;
  else if (hintsVary !== undefined) lines += `vary: ${hintsVary}\r\n`;
  for (let i = 0; i + 1 < extraHeaders.length; i += 2) lines += `${extraHeaders[i]!}: ${extraHeaders[i + 1]!}\r\n`; // pairs
  lines += variant.source.isNoStore ? options.noStoreHeaderLines : options.headerLines;

  if (matchesIfNoneMatch(req.headers["if-none-match"], variant.etag)) {
    res.writeHeadLines(304, lines);
    res.end();
    return;
  }
  const ifRange = req.headers["if-range"];
  const range =
    req.method === "GET" && (ifRange === undefined || ifRange === variant.etag)
      ? parseRange(req.headers.range, size)
      : { kind: "full" as const };
  if (range.kind === "unsatisfiable") {
    const contentRange = { "content-range": `bytes */${size}` };
    throw new ProxyError("RANGE_NOT_SATISFIABLE", `the image has ${size} bytes`, { headers: contentRange });
  }
  const isHead = req.method === "HEAD";
  if (range.kind === "partial") {
    const length = range.end - range.start + 1;
    res.writeHeadLines(206, `${lines}content-range: bytes ${range.start}-${range.end}/${size}\r\n`);
    res.end(variant.body.subarray(range.start, range.end + 1));
    stats.bytesServed += length;
    return;
  }
  res.writeHeadLines(200, lines, size);
  if (isHead) {
    res.end();
    return;
  }
  res.end(variant.body);
  stats.bytesServed += size;
  stats.originalBytesEquivalent += variant.originalBytes;
}
