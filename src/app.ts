import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { MemoryCache } from "./cache/memory-cache.ts";
import type { Config } from "./config/config.ts";
import { ProxyError } from "./errors.ts";
import type { Fetcher } from "./fetcher/fetcher.ts";
import { FsFetcher } from "./fetcher/fs-fetcher.ts";
import { HttpFetcher } from "./fetcher/http-fetcher.ts";
import { S3Fetcher } from "./fetcher/s3-fetcher.ts";
import { createHttpServer } from "./http/server.ts";
import type { HttpServer } from "./http/server.ts";
import { StaticFiles } from "./http/static-files.ts";
import { createLogger } from "./log.ts";
import type { Logger } from "./log.ts";
import { ImageProxy } from "./proxy/image-proxy.ts";
import { ProxyStats } from "./proxy/stats.ts";
import { TokenBucketLimiter } from "./rate-limit/token-bucket.ts";
import { Transformer } from "./transform/pipeline.ts";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** Query keys that belong to URL signing, not to transforms. */
const SIGNATURE_KEYS: ReadonlySet<string> = new Set();

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

function createFetcher(config: Config): Fetcher & { fetchListing?: () => Promise<Buffer> } {
  switch (config.origin.spec.kind) {
    case "http":
      return new HttpFetcher(config.origin);
    case "fs":
      return new FsFetcher(config.origin);
    case "s3":
      return new S3Fetcher(config.origin);
  }
}

/** The only module that constructs and connects every part. */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const log = options.logger ?? createLogger(config.log);
  const stats = new ProxyStats();
  const fetcher = createFetcher(config);
  const cacheOptions = { maxEntryBytes: config.cache.maxEntryBytes, ttlSeconds: config.cache.ttlSeconds, ...(options.now ? { now: options.now } : {}) };
  const originalsBytes = Math.floor(config.cache.maxBytes * config.cache.originalsShare);
  const originals = new MemoryCache({ name: "originals", maxBytes: originalsBytes, ...cacheOptions });
  const variants = new MemoryCache({ name: "variants", maxBytes: config.cache.maxBytes - originalsBytes, ...cacheOptions });
  const transformer = new Transformer(config.transform);
  const proxy = new ImageProxy({
    fetcher,
    originals,
    variants,
    transformer,
    stats,
    limits: { maxOutputDimension: config.transform.maxOutputDimension, allowSvg: config.transform.allowSvg },
    negativeTtlSeconds: config.cache.negativeTtlSeconds,
    ...(options.now ? { now: options.now } : {}),
  });
  const limiter =
    config.rateLimit.perSecond > 0
      ? new TokenBucketLimiter({ perSecond: config.rateLimit.perSecond, burst: config.rateLimit.burst, ...(options.now ? { now: options.now } : {}) })
      : undefined;
  const webRoot = config.http.webRoot !== "" ? config.http.webRoot : resolve(REPO_ROOT, "web/dist");
  const staticFiles = existsSync(webRoot) ? new StaticFiles(webRoot) : undefined;

  const listImages = async (): Promise<Buffer> => {
    if (fetcher.fetchListing) return fetcher.fetchListing();
    throw new ProxyError("NOT_FOUND", `this origin (${fetcher.description}) has no listing`);
  };

  const snapshot = (): unknown => {
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
      shed: t.rejected,
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
      origin: fetcher.description,
    };
  };

  const http = createHttpServer({
    config: config.http,
    image: { maxOutputDimension: config.transform.maxOutputDimension, ignoredKeys: SIGNATURE_KEYS },
    proxy,
    stats,
    limiter,
    log,
    checkOrigin: () => fetcher.checkReady(),
    listImages,
    snapshot,
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
  log.info({ url, origin: fetcher.description, cacheMaxBytes: config.cache.maxBytes }, "imagika proxy listening");

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      log.info({ timeoutMs: config.http.shutdownTimeoutMs }, "shutting down");
      await http.close(config.http.shutdownTimeoutMs);
      await fetcher.close();
      log.info("stopped");
      log.flush();
    })();
    return closing;
  };

  return { url, port: address.port, proxy, stats, originals, variants, transformer, http, close };
}
