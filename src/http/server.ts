import { randomUUID } from "node:crypto";
import type { Server } from "node:net";
import { performance } from "node:perf_hooks"; // the module's binding: the global one is a getter on globalThis
import type { HttpConfig } from "../config/config.ts";
import { ProxyError } from "../errors.ts";
import { createRequestLog } from "../observability/log.ts";
import type { Logger } from "../observability/log.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { ImageProxy } from "../proxy/image-proxy.ts";
import type { ProxyStats } from "../proxy/stats.ts";
import { clientAddress, clientKeyOf } from "../rate-limit/client-key.ts";
import type { RateLimiter } from "../rate-limit/redis-store.ts";
import type { RateDecision } from "../rate-limit/token-bucket.ts";
import { handleImages, handlePurge, presetListing } from "./handlers/api.ts";
import { handleHealth, handleReady, untilFirstSuccess } from "./handlers/health.ts";
import { handleImage, imageHeaderLines } from "./handlers/image.ts";
import type { CacheOutcome, ImageHandlerOptions } from "./handlers/image.ts";
import { createHttpEngine } from "./engine/http-engine.ts";
import type { Reply, HttpRequest } from "./engine/reply.ts";
import { sendError, sendJson } from "./respond.ts";
import type { StaticFiles } from "./static-files.ts";
import { ClientHintResolver } from "../transform/client-hints.ts";
import { TransformOptionsParser } from "../transform/options.ts";
import type { OptionRules } from "../transform/options.ts";

const REQUEST_ID = /^[\w.:-]{1,128}$/;

export interface HttpDeps {
  readonly config: HttpConfig;
  /** `rules`: the query vocabulary (createOptionRules). */
  readonly image: { readonly rules: OptionRules; readonly isRemoteEnabled: boolean };
  readonly proxy: ImageProxy;
  readonly stats: ProxyStats;
  readonly limiter: RateLimiter | undefined;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Does the origin answer? Asked by /readyz until it first does (handleReady says why not after). */
  readonly checkOrigin: () => Promise<void>;
  readonly listImages: () => Promise<Buffer>;
  /** /api/stats: this process's figures, or (under --workers) every worker's merged. */
  readonly snapshot: () => unknown;
  /** /metrics in the Prometheus text format. */
  readonly renderMetrics: () => Promise<{ readonly contentType: string; readonly body: string }>;
  readonly staticFiles: StaticFiles | undefined;
}

export interface HttpServer {
  readonly server: Server;
  /** Stops accepting, lets in-flight requests finish for up to `timeoutMs`, then cuts what is left. */
  close(timeoutMs: number): Promise<void>;
  readonly isShuttingDown: () => boolean;
}

/** The routes, on the proxy's own HTTP/1.1 engine (engine/http-engine.ts says why not node:http). */
export function createHttpServer(deps: HttpDeps): HttpServer {
  const { config, log, stats, limiter } = deps;
  const { rules } = deps.image;
  const imageOptions: ImageHandlerOptions = {
    ...deps.image,
    signingKeys: config.signingKeys,
    queryParser: new TransformOptionsParser(rules),
    clientHints: new ClientHintResolver(rules),
    headerLines: imageHeaderLines({ ...config, hasClientHints: rules.hasClientHints === true }),
    noStoreHeaderLines: imageHeaderLines({ ...config, hasClientHints: rules.hasClientHints === true, isNoStore: true }),
  };
  const policy = limiter
    ? `"default";q=${limiter.burst};w=${Math.max(1, Math.ceil(limiter.burst / limiter.perSecond))}`
    : "";
  /** Presets are fixed at start: the /api/presets body is built once. */
  const presets = presetListing(rules);
  const checkOrigin = untilFirstSuccess(deps.checkOrigin);
  let shuttingDown = false;
  const requestLog = createRequestLog(log);

  /** Metrics and the request log line, once per request. */
  function finish(
    req: HttpRequest,
    res: Reply,
    url: string,
    started: number,
    reqId: string,
    cache: CacheOutcome | undefined,
  ): void {
    const ms = performance.now() - started;
    deps.metrics.observeRequest(routeOf(url), res.statusCode, cache ?? "none", ms);
    requestLog(reqId, req.method, url, res.statusCode, cache, ms);
  }

  /**
   * Applies the client's token bucket; false when the request was answered 429. A promise only with the Redis limiter,
   * so the default (in-memory) path stays synchronous.
   */
  function admit(req: HttpRequest, res: Reply, extra: string[]): boolean | Promise<boolean> {
    if (!limiter) return true;
    const forwardedFor = config.trustProxyHops > 0 ? req.headers["x-forwarded-for"] : undefined;
    const decision = limiter.take(
      forwardedFor === undefined
        ? req.clientKey
        : clientKeyOf(clientAddress(req.socket.remoteAddress, forwardedFor, config.trustProxyHops)),
    );
    return decision instanceof Promise
      ? decision.then((settled) => applyDecision(limiter, res, extra, settled))
      : applyDecision(limiter, res, extra, decision);
  }

  function applyDecision(limiter: RateLimiter, res: Reply, extra: string[], decision: RateDecision): boolean {
    extra.push("ratelimit-policy", policy, "ratelimit", `"default";r=${decision.remaining};t=${decision.resetSeconds}`);
    if (decision.allowed) return true;
    stats.rateLimited++;
    res.setHeaderPairs(extra);
    const message = `too many requests: at most ${limiter.perSecond}/s with bursts of ${limiter.burst}`;
    sendError(res, new ProxyError("RATE_LIMITED", message, { retryAfterSeconds: decision.retryAfterSeconds }), log);
    return false;
  }

  /**
   * The image route, synchronous up to the cache lookup: a memory hit is answered without a single promise (an
   * async chain cost ~3 µs per request on the hot path); misses and the Redis limiter return a promise.
   *
   * `extra` holds per-request headers (X-Request-Id, RateLimit). The image route sends them with its other headers as
   * one block of lines, so their values must be safe on the wire as they are (see Reply.writeHeadLines).
   */
  function routeImage(
    req: HttpRequest,
    res: Reply,
    url: string,
    started: number,
    extra: string[],
  ): CacheOutcome | undefined | Promise<CacheOutcome | undefined> {
    const method = req.method;
    if (method !== "GET" && method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      throw new ProxyError("METHOD_NOT_ALLOWED", "images are read with GET or HEAD");
    }
    if (req.hasBody) {
      throw new ProxyError("BODY_NOT_ALLOWED", "image requests carry no body");
    }
    const admitted = admit(req, res, extra);
    if (admitted === true) return serveImage(req, res, url, started, extra);
    if (admitted === false) return undefined;
    return admitted.then((isAdmitted) => (isAdmitted ? serveImage(req, res, url, started, extra) : undefined));
  }

  function serveImage(
    req: HttpRequest,
    res: Reply,
    url: string,
    started: number,
    extra: string[],
  ): CacheOutcome | Promise<CacheOutcome> {
    stats.requests++;
    if (url === "/img") throw new ProxyError("INVALID_PATH", "the URL names no image: use /img/<path>");
    return handleImage(req, res, url, deps.proxy, stats, deps.metrics, imageOptions, started, extra);
  }

  /** Answers a request whose handler threw or rejected, then logs it. */
  function fail(
    req: HttpRequest,
    res: Reply,
    url: string,
    started: number,
    reqId: string,
    extra: readonly string[],
    error: unknown,
  ): void {
    if (!res.headersSent) res.setHeaderPairs(extra);
    sendError(res, error, log.child({ reqId }));
    finish(req, res, url, started, reqId, undefined);
  }

  async function route(req: HttpRequest, res: Reply, url: string, extra: string[]): Promise<CacheOutcome | undefined> {
    const method = req.method;
    const isRead = method === "GET" || method === "HEAD";
    const pathname = url.split("?")[0] ?? url;
    const isLimited = pathname === "/api/images" || pathname === "/api/cache" || pathname.startsWith("/api/cache/");
    if (isLimited) {
      const admitted = admit(req, res, extra);
      if (admitted === false || (admitted !== true && !(await admitted))) return undefined;
    }
    res.setHeaderPairs(extra);
    if (pathname === "/healthz") return void handleHealth(res);
    if (pathname === "/readyz") return void (await handleReady(res, shuttingDown, checkOrigin));
    if (pathname === "/metrics") {
      const { contentType, body } = await deps.renderMetrics();
      res.writeHead(200, {
        "content-type": contentType,
        "content-length": Buffer.byteLength(body),
        "cache-control": "no-store",
      });
      res.end(method === "HEAD" ? undefined : body);
      return undefined;
    }
    if (pathname === "/api/stats")
      return void sendJson(res, 200, await deps.snapshot(), { "cache-control": "no-store" });
    if (pathname === "/api/images") return void (await handleImages(res, deps.listImages));
    if (pathname === "/api/presets") return void sendJson(res, 200, presets, { "cache-control": "no-cache" });
    if (pathname === "/api/cache" || pathname.startsWith("/api/cache/")) {
      return void (await handlePurge(req, res, url, deps.proxy, config.adminToken));
    }
    if (
      isRead &&
      !pathname.startsWith("/api/") &&
      deps.staticFiles &&
      (await deps.staticFiles.serve(req, res, pathname))
    )
      return undefined;
    throw new ProxyError("NOT_FOUND", "no such endpoint");
  }

  function handle(req: HttpRequest, res: Reply): void {
    const started = performance.now();
    const url = req.url;
    const incomingId = req.headers["x-request-id"];
    const reqId = incomingId !== undefined && REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
    const extra = ["x-request-id", reqId];
    // No closures on this path: a memory hit allocates none (under tsx each closure also costs an
    // Object.defineProperty for its name, ~2.5% of a hit's CPU in a profile).
    const isImage = url.startsWith("/img/") || url === "/img" || url.startsWith("/img?");
    let outcome: CacheOutcome | undefined | Promise<CacheOutcome | undefined>;
    try {
      outcome = isImage ? routeImage(req, res, url, started, extra) : route(req, res, url, extra);
    } catch (error) {
      return fail(req, res, url, started, reqId, extra, error);
    }
    if (outcome instanceof Promise) {
      outcome.then(
        (cache) => finish(req, res, url, started, reqId, cache),
        (error: unknown) => fail(req, res, url, started, reqId, extra, error),
      );
    } else finish(req, res, url, started, reqId, outcome);
  }

  const engine = createHttpEngine({
    handler: handle,
    // No request has a body, so the whole request is its head: the shorter of the two limits applies.
    headersTimeoutMs: Math.min(config.headersTimeoutMs, config.requestTimeoutMs),
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    sendTimeoutMs: config.sendTimeoutMs,
    maxRequestsPerSocket: 10_000,
    maxConnectionsPerClient: config.maxConnectionsPerClient,
    clientKeyOf: (socket) => clientKeyOf(socket.remoteAddress ?? "unknown"),
    onRejectedConnection: () => void stats.rejectedConnections++,
    onRefusedRequest: (res, error) => {
      stats.refusedRequests++;
      log.debug(
        { status: error.status, code: error.code, reason: error.message, client: res.req.socket.remoteAddress },
        "refused request",
      );
      sendError(res, error, log);
    },
  });

  async function close(timeoutMs: number): Promise<void> {
    shuttingDown = true;
    await engine.close(timeoutMs);
    requestLog.close();
  }

  return { server: engine.server, close, isShuttingDown: () => shuttingDown };
}

/** Low-cardinality route label for metrics. */
function routeOf(url: string): string {
  if (url.startsWith("/img")) return "img";
  if (url.startsWith("/api/cache")) return "purge";
  if (url.startsWith("/api/images")) return "images";
  if (url.startsWith("/api/presets")) return "presets";
  if (url.startsWith("/api/")) return "stats";
  if (url === "/healthz" || url === "/readyz" || url === "/metrics") return url.slice(1);
  return "static";
}
