import { existsSync, readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { MemoryCache } from "./cache/memory-cache.ts";
import { joinCluster } from "./cluster.ts";
import type { StatsSnapshot } from "./cluster-stats.ts";
import type { Config } from "./config/config.ts";
import { ProxyError } from "./errors.ts";
import type { Fetcher } from "./fetcher/fetcher.ts";
import { FsFetcher } from "./fetcher/fs-fetcher.ts";
import { HttpFetcher } from "./fetcher/http-fetcher.ts";
import { ImageIndex } from "../origin-server/image-index.ts";
import { createHttpServer } from "./http/server.ts";
import type { HttpServer } from "./http/server.ts";
import { StaticFiles } from "./http/static-files.ts";
import { createLogger } from "./log.ts";
import type { Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import type { SampledMetric } from "./metrics.ts";
import { ImageProxy } from "./proxy/image-proxy.ts";
import { ProxyStats } from "./proxy/stats.ts";
import { TokenBucketLimiter } from "./rate-limit/token-bucket.ts";
import { createScaleOut } from "./scale-out.ts";
import { MARGIN_SHARE } from "./config/memory.ts";
import { MemoryBudget } from "./memory/memory-budget.ts";
import { TransformLimiter } from "./transform/limiter.ts";
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
  /** Graceful: stop accepting, finish in-flight requests (bounded), release the origin pool. */
  close(): Promise<void>;
}

async function createFetcher(config: Config): Promise<Fetcher & { fetchListing?: () => Promise<Buffer> }> {
  switch (config.origin.spec.kind) {
    case "http":
      return new HttpFetcher(config.origin);
    case "fs":
      return new FsFetcher(config.origin);
    case "s3": {
      // Loaded only for an S3 origin: the AWS SDK adds ~3 MiB to every heap that does not use it (see scale-out.ts).
      const { S3Fetcher } = await import("./fetcher/s3-fetcher.ts");
      return new S3Fetcher(config.origin);
    }
  }
}

/** The only module that constructs and connects every part. */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  // First: a bad preset stops the start (ConfigError) before anything listens or connects.
  const rules = createOptionRules(config.imageOptions, config.transform);
  const log = options.logger ?? createLogger(config.log);
  const stats = new ProxyStats();
  const fetcher = await createFetcher(config);
  // Remote mode (/img?url=) exists only when --allowed-sources names hosts; its fetches pass the SSRF guard.
  const remote =
    config.origin.allowedSources.length === 0
      ? undefined
      : fetcher instanceof HttpFetcher
        ? fetcher
        : new HttpFetcher(config.origin);
  const cacheOptions = {
    maxEntryBytes: config.cache.maxEntryBytes,
    ttlSeconds: config.cache.ttlSeconds,
    ...(options.now ? { now: options.now } : {}),
  };
  const memory = createMemoryBudget(config);
  const originalsBytes = Math.floor(config.cache.maxBytes * config.cache.originalsShare);
  const onGrow = (): void => memory.fitCaches();
  const originals = new MemoryCache({ name: "originals", maxBytes: originalsBytes, onGrow, ...cacheOptions });
  const variants = new MemoryCache({
    name: "variants",
    maxBytes: config.cache.maxBytes - originalsBytes,
    onGrow,
    ...cacheOptions,
  });
  for (const [cache, share] of [
    [originals, config.cache.originalsShare],
    [variants, 1 - config.cache.originalsShare],
  ] as const) {
    memory.addCache({ share, bytes: () => cache.stats().bytes, trimTo: (maxBytes) => cache.trimTo(maxBytes) });
  }
  const stopSampling = memory.startSampling(MEMORY_SAMPLE_MS);
  const transformer = new Transformer(config.transform, memory);
  const scaleOut = await createScaleOut(config, log);
  const proxy = new ImageProxy({
    fetcher,
    fetchLimiter: new TransformLimiter({ concurrency: config.origin.concurrency, queue: config.origin.queue }),
    remote,
    originals,
    variants,
    transformer,
    stats,
    limits: { maxOutputDimension: config.transform.maxOutputDimension, allowSvg: config.transform.allowSvg },
    negativeTtlSeconds: config.cache.negativeTtlSeconds,
    ...(options.now ? { now: options.now } : {}),
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
          ...(options.now ? { now: options.now } : {}),
        })
      : undefined,
  );
  const webRoot = config.http.webRoot !== "" ? config.http.webRoot : resolve(REPO_ROOT, "web/dist");
  const staticFiles = existsSync(webRoot) ? new StaticFiles(webRoot) : undefined;

  // A directory origin is listed in-process with the origin server's own index (same JSON as its /index.json).
  const directoryIndex = fetcher instanceof FsFetcher ? new ImageIndex(fetcher.root) : undefined;
  const listImages = async (): Promise<Buffer> => {
    if (fetcher.fetchListing) return fetcher.fetchListing();
    if (directoryIndex) return (await directoryIndex.get()).body;
    throw new ProxyError("NOT_FOUND", `this origin (${fetcher.description}) has no listing`);
  };

  const snapshot = (): StatsSnapshot => {
    const o = originals.stats();
    const v = variants.stats();
    const t = transformer.stats();
    const lookups = stats.hits + stats.misses;
    return {
      uptimeSeconds: Math.round((Date.now() - stats.startedAtMs) / 1000),
      requests: stats.requests,
      hits: stats.hits,
      misses: stats.misses,
      hitRatio: lookups === 0 ? 0 : stats.hits / lookups,
      originFetches: stats.originFetches,
      originErrors: stats.originErrors,
      coalesced: stats.coalesced,
      transforms: t.transforms,
      transformsInFlight: t.inFlight,
      transformsQueued: t.queued,
      transformsRejected: t.rejected,
      rateLimited: stats.rateLimited,
      rejectedConnections: stats.rejectedConnections,
      refusedRequests: stats.refusedRequests,
      shed: t.rejected + stats.shed,
      bytesServed: stats.bytesServed,
      originalBytesEquivalent: stats.originalBytesEquivalent,
      cache: {
        entries: o.entries + v.entries,
        bytes: o.bytes + v.bytes,
        maxBytes: o.maxBytes + v.maxBytes,
        evictions: o.evictions + v.evictions,
        originals: o,
        variants: v,
      },
      rateLimit: { perSecond: config.rateLimit.perSecond, burst: config.rateLimit.burst },
      tiers: scaleOut.snapshot(),
      origin: fetcher.description,
      memory: memory.stats(),
    };
  };

  const metrics = new Metrics();
  const tiers = [originals, variants];
  metrics.sample([
    {
      name: "imagika_cache_bytes",
      help: "Bytes held per cache tier",
      type: "gauge",
      labelNames: ["tier"],
      read: () => [
        ...tiers.map((t) => ({ labels: { tier: `memory-${t.name}` }, value: t.stats().bytes })),
        ...scaleOut.tierSamples("bytes"),
      ],
    },
    {
      name: "imagika_cache_entries",
      help: "Entries per cache tier",
      type: "gauge",
      labelNames: ["tier"],
      read: () => [
        ...tiers.map((t) => ({ labels: { tier: `memory-${t.name}` }, value: t.stats().entries })),
        ...scaleOut.tierSamples("entries"),
      ],
    },
    {
      name: "imagika_cache_max_bytes",
      help: "Byte budget per cache tier",
      type: "gauge",
      labelNames: ["tier"],
      read: () => [
        ...tiers.map((t) => ({ labels: { tier: `memory-${t.name}` }, value: t.stats().maxBytes })),
        ...scaleOut.tierSamples("maxBytes"),
      ],
    },
    {
      name: "imagika_cache_evictions_total",
      help: "Entries evicted to make room, per tier",
      type: "counter",
      labelNames: ["tier"],
      read: () => [
        ...tiers.map((t) => ({ labels: { tier: `memory-${t.name}` }, value: t.stats().evictions })),
        ...scaleOut.tierSamples("evictions"),
      ],
    },
    {
      name: "imagika_cache_lookups_total",
      help: "Cache lookups by result",
      type: "counter",
      labelNames: ["result"],
      read: () => [
        { labels: { result: "hit" }, value: stats.hits },
        { labels: { result: "miss" }, value: stats.misses },
      ],
    },
    {
      name: "imagika_origin_fetches_total",
      help: "Fetches of originals from the origin",
      type: "counter",
      read: () => [{ value: stats.originFetches }],
    },
    {
      name: "imagika_origin_errors_total",
      help: "Failed origin fetches by error code",
      type: "counter",
      labelNames: ["code"],
      read: () => [...stats.originErrorsByCode].map(([code, value]) => ({ labels: { code }, value })),
    },
    {
      name: "imagika_coalesced_requests_total",
      help: "Requests that waited on another request's fetch or transform",
      type: "counter",
      read: () => [{ value: stats.coalesced }],
    },
    {
      name: "imagika_transforms_total",
      help: "Transforms run",
      type: "counter",
      read: () => [{ value: transformer.stats().transforms }],
    },
    {
      name: "imagika_transforms_in_flight",
      help: "Transforms running now",
      type: "gauge",
      read: () => [{ value: transformer.stats().inFlight }],
    },
    {
      name: "imagika_transforms_queued",
      help: "Transforms waiting for a slot",
      type: "gauge",
      read: () => [{ value: transformer.stats().queued }],
    },
    {
      name: "imagika_shed_total",
      help: "Requests refused with 503 because a queue was full, by queue (transform, origin)",
      type: "counter",
      labelNames: ["queue"],
      read: () => [
        { labels: { queue: "transform" }, value: transformer.stats().rejected },
        { labels: { queue: "origin" }, value: stats.shed },
      ],
    },
    {
      name: "imagika_rate_limited_total",
      help: "Requests refused with 429",
      type: "counter",
      read: () => [{ value: stats.rateLimited }],
    },
    {
      name: "imagika_rejected_connections_total",
      help: "Connections closed at once: their client already held --max-connections-per-client",
      type: "counter",
      read: () => [{ value: stats.rejectedConnections }],
    },
    {
      name: "imagika_refused_requests_total",
      help: "Requests refused before routing: malformed (400), too slow (408), too large (414, 431)",
      type: "counter",
      read: () => [{ value: stats.refusedRequests }],
    },
    {
      name: "imagika_bytes_served_total",
      help: "Response body bytes sent for images",
      type: "counter",
      read: () => [{ value: stats.bytesServed }],
    },
    {
      name: "imagika_original_bytes_equivalent_total",
      help: "Bytes the originals behind every served image would have cost",
      type: "counter",
      read: () => [{ value: stats.originalBytesEquivalent }],
    },
    ...memoryMetrics(memory),
    ...scaleOut.metrics,
  ]);

  // Under --workers: /metrics and /api/stats describe every worker, not the one the request landed on.
  const clusterView = joinCluster({ metrics, snapshot, log });
  const http = createHttpServer({
    config: config.http,
    image: { rules, isRemoteEnabled: remote !== undefined },
    proxy,
    stats,
    limiter,
    log,
    metrics,
    checkOrigin: () => fetcher.checkReady(),
    listImages,
    snapshot: clusterView ? () => clusterView.stats() : snapshot,
    renderMetrics: clusterView ? () => clusterView.render() : () => metrics.render(),
    staticFiles,
  });

  await new Promise<void>((resolveListen, rejectListen) => {
    http.server.once("error", rejectListen);
    http.server.listen(config.port, config.host, () => {
      http.server.off("error", rejectListen);
      resolveListen();
    });
  });
  const address = http.server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
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
      await http.close(config.http.shutdownTimeoutMs);
      await fetcher.close();
      if (remote && remote !== fetcher) await remote.close();
      await scaleOut.close();
      stopSampling();
      log.info("stopped");
      log.flush();
    })();
    return closing;
  };

  return { url, port: address.port, proxy, stats, originals, variants, transformer, http, close };
}

/** RSS is read this often to measure the overhead the budget cannot account (process.memoryUsage.rss(): ~2 µs). */
const MEMORY_SAMPLE_MS = 200;
/** Longest a transform or download waits for memory before its request is answered 503. */
const MEMORY_MAX_WAIT_MS = 10_000;

/** The process-wide memory budget (issue 18): --memory-limit shared by the caches and in-flight work. */
function createMemoryBudget(config: Config): MemoryBudget {
  const gc = (globalThis as { gc?: () => void }).gc; // present when started with --expose-gc (bin/imagika.js)
  return new MemoryBudget({
    limitBytes: config.memory.limitBytes,
    marginBytes: Math.floor(config.memory.limitBytes * MARGIN_SHARE),
    baselineBytes: process.memoryUsage.rss(),
    // A quarter of the cache survives any burst of work, so hits keep coming while cold work waits.
    cacheFloorBytes: Math.floor(config.cache.maxBytes / 4),
    cacheMaxBytes: config.cache.maxBytes,
    readRss: () => process.memoryUsage.rss(),
    collectGarbage: gc,
    maxWaiters: config.transform.queue,
    maxWaitMs: MEMORY_MAX_WAIT_MS,
  });
}

function memoryMetrics(memory: MemoryBudget): SampledMetric[] {
  const gauge = (name: string, help: string, read: () => number): SampledMetric => ({
    name,
    help,
    type: "gauge",
    read: () => [{ value: read() }],
  });
  return [
    gauge("imagika_memory_limit_bytes", "The process's memory limit (--memory-limit)", () => memory.limitBytes),
    gauge("imagika_memory_rss_bytes", "Resident set size of the process", () => memory.stats().rssBytes),
    gauge("imagika_memory_cache_bytes", "Bytes held by the memory caches", () => memory.stats().cacheBytes),
    gauge(
      "imagika_memory_reserved_bytes",
      "Bytes reserved by in-flight downloads and transforms",
      () => memory.stats().reservedBytes,
    ),
    gauge("imagika_memory_waiting", "Downloads and transforms waiting for memory", () => memory.stats().waiting),
    {
      name: "imagika_memory_shed_total",
      help: "Requests refused because their work did not fit in memory, by status (503 waited too long, 413 never fits)",
      type: "counter",
      labelNames: ["status"],
      read: () => [
        { labels: { status: "503" }, value: memory.stats().shed },
        { labels: { status: "413" }, value: memory.stats().tooLarge },
      ],
    },
  ];
}

/** Which allocator this process runs on, for the start-up log line (bin/imagika.js chooses it). */
function describeAllocator(): string {
  try {
    if (readFileSync("/proc/self/maps", "utf8").includes("libjemalloc"))
      return `jemalloc (${process.env.MALLOC_CONF ?? "default"})`;
  } catch {
    return "unknown";
  }
  const arenas = process.env.MALLOC_ARENA_MAX;
  return arenas === undefined ? "glibc malloc (untuned)" : `glibc malloc (MALLOC_ARENA_MAX=${arenas})`;
}
