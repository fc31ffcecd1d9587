import { existsSync } from "node:fs";
import type { AddressInfo, Server } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildStatsSnapshot, registerMetrics } from "./app-metrics.ts";
import type { AppFigures } from "./app-metrics.ts";
import { MemoryCache } from "./cache/memory-cache.ts";
import { joinCluster } from "./cluster/workers.ts";
import type { ClusterView } from "./cluster/workers.ts";
import type { StatsSnapshot } from "./cluster/cluster-stats.ts";
import type { Config } from "./config/config.ts";
import { ProxyError } from "./errors.ts";
import type { Fetcher } from "./fetcher/fetcher.ts";
import { FsFetcher } from "./fetcher/fs-fetcher.ts";
import { HttpFetcher } from "./fetcher/http-fetcher.ts";
import { ImageIndex } from "../origin-server/image-index.ts";
import { createHttpServer } from "./http/server.ts";
import type { HttpServer } from "./http/server.ts";
import { StaticFiles } from "./http/static-files.ts";
import { createLogger } from "./observability/log.ts";
import type { Logger } from "./observability/log.ts";
import { Metrics } from "./observability/metrics.ts";
import { ImageProxy } from "./proxy/image-proxy.ts";
import { ProxyStats } from "./proxy/stats.ts";
import { TokenBucketLimiter } from "./rate-limit/token-bucket.ts";
import { MemoryBudget } from "./memory/memory-budget.ts";
import { createProcessMemoryBudget, describeAllocator, MEMORY_SAMPLE_MS } from "./memory/process-memory.ts";
import { createScaleOut } from "./cluster/scale-out.ts";
import type { ScaleOut } from "./cluster/scale-out.ts";
import { WorkLimiter } from "./transform/limiter.ts";
import { Transformer } from "./transform/pipeline.ts";
import { createOptionRules } from "./transform/options.ts";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export interface AppOptions {
  /** Injected clock (ms) for cache TTLs and token buckets; tests only. */
  readonly now?: () => number;
  readonly logger?: Logger;
}

export interface App {
  readonly url: string;
  readonly port: number;
  readonly proxy: ImageProxy;
  readonly stats: ProxyStats;
  readonly originals: MemoryCache;
  readonly variants: MemoryCache;
  readonly transformer: Transformer;
  readonly http: HttpServer;
  /** Graceful: stop accepting, finish in-flight requests (bounded), then release the origin pools, Redis and timers. */
  close(): Promise<void>;
}

async function createFetcher(config: Config): Promise<Fetcher & { fetchListing?: () => Promise<Buffer> }> {
  switch (config.origin.spec.kind) {
    case "http":
      return new HttpFetcher(config.origin);
    case "fs":
      return new FsFetcher(config.origin);
    case "s3": {
      // Loaded only for an S3 origin: the AWS SDK adds ~3 MiB to every heap that does not use it (see
      // cluster/scale-out.ts).
      const { S3Fetcher } = await import("./fetcher/s3-fetcher.ts");
      return new S3Fetcher(config.origin);
    }
  }
}

/** The parts with something to release, as far as a start got; close() and a failed start release these. */
interface Releasable {
  fetcher?: Fetcher;
  remote?: HttpFetcher | undefined;
  scaleOut?: ScaleOut;
  metrics?: Metrics;
  clusterView?: ClusterView | undefined;
  http?: HttpServer;
  /** Stops the memory budget's RSS sampling. */
  stopSampling?: () => void;
}

/**
 * Closes every part that exists, in this order, each even if one before failed; rejects with the first failure.
 * The HTTP server goes first: in-flight requests still need the origin and the tiers.
 */
async function release(parts: Releasable, shutdownTimeoutMs: number): Promise<void> {
  const { http, fetcher, remote, scaleOut, metrics, clusterView, stopSampling } = parts;
  const steps = [
    () => http?.close(shutdownTimeoutMs),
    () => fetcher?.close(),
    () => (remote && remote !== fetcher ? remote.close() : undefined),
    () => scaleOut?.close(),
    () => metrics?.close(),
    () => clusterView?.close(),
    () => stopSampling?.(),
  ];
  let failure: Error | undefined;
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      failure ??= error instanceof Error ? error : new Error(String(error));
    }
  }
  if (failure) throw failure;
}

/** Remote mode (/img?url=) exists only when --allowed-sources names hosts; its fetches pass the SSRF guard. */
function remoteFetcher(config: Config, fetcher: Fetcher): HttpFetcher | undefined {
  if (config.origin.allowedSources.length === 0) return undefined;
  return fetcher instanceof HttpFetcher ? fetcher : new HttpFetcher(config.origin);
}

/**
 * The two memory LRUs: originals take `--cache-originals-share` of the budget, variants the rest; the process's
 * memory budget trims both (each to its share of the room) when in-flight work needs memory.
 */
function buildCaches(
  config: Config,
  now: (() => number) | undefined,
  memory: MemoryBudget,
): { originals: MemoryCache; variants: MemoryCache } {
  const cacheOptions = {
    maxEntryBytes: config.cache.maxEntryBytes,
    // Freshness is the proxy's (each entry's Source): a stale entry stays until evicted, to be revalidated with a
    // conditional request or served while the origin is down.
    ttlSeconds: 0,
    onGrow: () => memory.fitCaches(),
    ...(now ? { now } : {}),
  };
  const share = config.cache.originalsShare;
  const originalsBytes = Math.floor(config.cache.maxBytes * share);
  const originals = new MemoryCache({ name: "originals", maxBytes: originalsBytes, ...cacheOptions });
  const variants = new MemoryCache({
    name: "variants",
    maxBytes: config.cache.maxBytes - originalsBytes,
    ...cacheOptions,
  });
  for (const [cache, cacheShare] of [
    [originals, share],
    [variants, 1 - share],
  ] as const) {
    memory.addCache({ share: cacheShare, bytes: () => cache.stats().bytes, trimTo: (max) => cache.trimTo(max) });
  }
  return { originals, variants };
}

/** `/api/images`: the fetcher's own listing, or a directory origin's index as the origin server makes it. */
function imageLister(fetcher: Fetcher & { fetchListing?: () => Promise<Buffer> }): () => Promise<Buffer> {
  const directoryIndex = fetcher instanceof FsFetcher ? new ImageIndex(fetcher.root) : undefined;
  return async () => {
    if (fetcher.fetchListing) return fetcher.fetchListing();
    if (directoryIndex) return (await directoryIndex.get()).body;
    throw new ProxyError("NOT_FOUND", `this origin (${fetcher.description}) has no listing`);
  };
}

/** Listens on the configured address; resolves with the URL clients use. */
async function listen(server: Server, port: number, host: string): Promise<{ url: string; port: number }> {
  await new Promise<void>((resolveListen, rejectListen) => {
    server.once("error", rejectListen);
    server.listen(port, host, () => {
      server.off("error", rejectListen);
      resolveListen();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return { url: `http://${shownHost}:${address.port}`, port: address.port };
}

/**
 * The only module that constructs and connects every part. A start that fails (scale-out set-up, listen) releases
 * what it had built before rejecting, as close() does: no origin pool, Redis client or timer outlives the app.
 */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const log = options.logger ?? createLogger(config.log);
  const parts: Releasable = {};
  try {
    return await startApp(config, options, log, parts);
  } catch (error) {
    await release(parts, 0).catch((releaseError: unknown) =>
      log.warn({ err: releaseError }, "releasing a failed start failed"),
    );
    throw error;
  }
}

/** createApp's work: builds the parts, recording in `parts` what will need releasing, and listens. */
async function startApp(config: Config, options: AppOptions, log: Logger, parts: Releasable): Promise<App> {
  // First: a bad preset stops the start (ConfigError) before anything listens or connects.
  const rules = createOptionRules(config.imageOptions, config.transform);
  const { now } = options;
  const stats = new ProxyStats();
  const fetcher = (parts.fetcher = await createFetcher(config));
  const remote = (parts.remote = remoteFetcher(config, fetcher));
  const memory = createProcessMemoryBudget(config);
  parts.stopSampling = memory.startSampling(MEMORY_SAMPLE_MS);
  const { originals, variants } = buildCaches(config, now, memory);
  const transformer = new Transformer(config.transform, memory);
  const scaleOut = (parts.scaleOut = await createScaleOut(config, log, now));
  const proxy = new ImageProxy({
    fetcher,
    fetchLimiter: new WorkLimiter({
      name: "origin fetches",
      concurrency: config.origin.concurrency,
      queue: config.origin.queue,
    }),
    remote,
    originals,
    variants,
    transformer,
    stats,
    limits: { maxOutputDimension: config.transform.maxOutputDimension, allowSvg: config.transform.allowSvg },
    negativeTtlSeconds: config.cache.negativeTtlSeconds,
    freshness: config.cache,
    ...(now ? { now } : {}),
    lower: scaleOut.lower,
    cluster: scaleOut.cluster,
    announcePurge: scaleOut.announcePurge,
    memory,
  });
  scaleOut.onRemotePurge((path) => proxy.applyRemotePurge(path));
  const limiter = scaleOut.limiter(
    config.rateLimit.perSecond > 0
      ? new TokenBucketLimiter({
          perSecond: config.rateLimit.perSecond,
          burst: config.rateLimit.burst,
          ...(now ? { now } : {}),
        })
      : undefined,
  );
  const webRoot = config.http.webRoot !== "" ? config.http.webRoot : resolve(REPO_ROOT, "web/dist");
  const staticFiles = existsSync(webRoot) ? new StaticFiles(webRoot) : undefined;

  const figures: AppFigures = {
    stats,
    originals,
    variants,
    transformer,
    scaleOut,
    rateLimit: config.rateLimit,
    origin: fetcher.description,
    memory,
  };
  const snapshot = (): StatsSnapshot => buildStatsSnapshot(figures);
  const metrics = (parts.metrics = new Metrics());
  registerMetrics(metrics, figures);
  // Under --workers: /metrics and /api/stats describe every worker, not the one the request landed on.
  const clusterView = (parts.clusterView = joinCluster({ metrics, snapshot, log }));
  const http = (parts.http = createHttpServer({
    config: config.http,
    image: { rules, isRemoteEnabled: remote !== undefined },
    proxy,
    stats,
    limiter,
    log,
    metrics,
    checkOrigin: () => fetcher.checkReady(),
    listImages: imageLister(fetcher),
    snapshot: clusterView ? () => clusterView.stats() : snapshot,
    renderMetrics: clusterView ? () => clusterView.render() : () => metrics.render(),
    staticFiles,
  }));

  const { url, port } = await listen(http.server, config.port, config.host);
  log.info(
    {
      url,
      origin: fetcher.description,
      memoryLimitBytes: config.memory.limitBytes,
      memoryLimitFrom: config.memory.source,
      cacheMaxBytes: config.cache.maxBytes,
      allocator: describeAllocator(),
    },
    "imagika proxy listening",
  );

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      log.info({ timeoutMs: config.http.shutdownTimeoutMs }, "shutting down");
      await release(parts, config.http.shutdownTimeoutMs);
      log.info("stopped");
      log.flush();
    })();
    return closing;
  };

  return { url, port, proxy, stats, originals, variants, transformer, http, close };
}
