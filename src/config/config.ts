import { planMemory, readCgroupMemoryLimit } from "./memory.ts";
import { bandwidth, int, text } from "./parsers.ts";
import { PROXY_SETTINGS } from "./proxy-settings.ts";
import type { LogLevel, OriginSpec, ProxySettings } from "./proxy-settings.ts";
import { ConfigError, loadSettings, setting } from "./settings.ts";

export const ENV_PREFIX = "IMAGIKA_";
export const ORIGIN_ENV_PREFIX = "IMAGIKA_ORIGIN_";

/** The proxy's configuration, sliced per module. */
export interface Config {
  readonly port: number;
  readonly host: string;
  readonly origin: OriginConfig;
  readonly cache: CacheConfig;
  readonly rateLimit: RateLimitConfig;
  readonly transform: TransformConfig;
  readonly http: HttpConfig;
  readonly log: LogConfig;
  /** Processes on this host (node:cluster); 1 = this process serves. */
  readonly workers: number;
  readonly redis: RedisConfig;
  readonly memory: MemoryConfig;
  readonly imageOptions: ImageOptionsConfig;
}

/** The query vocabulary of image URLs beyond the built-in options (transform/options.ts: createOptionRules). */
export interface ImageOptionsConfig {
  /** Preset name → option query string, as read from --presets (parsed and checked at start). */
  readonly presets: Readonly<Record<string, string>>;
  readonly isPresetsOnly: boolean;
  /** Sorted; empty: any width. */
  readonly allowedWidths: readonly number[];
  /** Sorted; empty: any quality. */
  readonly allowedQualities: readonly number[];
  readonly hasClientHints: boolean;
}

export interface MemoryConfig {
  /** RSS this process keeps under (per worker). */
  readonly limitBytes: number;
  /** Where the limit came from: the flag, the container's cgroup, or derived from the cache budget. */
  readonly source: "flag" | "cgroup" | "cache";
}

/** One Redis (`--redis-url`) or a Redis Cluster found from its seed nodes (`--redis-cluster`). */
export type RedisTarget =
  { readonly kind: "single"; readonly url: string } | { readonly kind: "cluster"; readonly seeds: readonly string[] };

export interface RedisConfig {
  /** Undefined: no Redis (no shared tier, no cluster coalescing, per-instance rate limits and purges). */
  readonly target: RedisTarget | undefined;
  readonly keyPrefix: string;
}

export interface OriginConfig {
  readonly spec: OriginSpec;
  readonly s3Region: string;
  readonly s3Endpoint: string;
  readonly maxSourceBytes: number;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly totalTimeoutMs: number;
  readonly connections: number;
  readonly concurrency: number;
  readonly queue: number;
  readonly maxRedirects: number;
  readonly allowPrivateOrigins: boolean;
  /** Host patterns for remote mode (`GET /img?url=`); empty: remote mode off. */
  readonly allowedSources: readonly string[];
}

export interface CacheConfig {
  readonly maxBytes: number;
  readonly maxEntryBytes: number;
  /** Freshness when the origin gives none (0: until evicted). */
  readonly ttlSeconds: number;
  readonly staleWhileRevalidateSeconds: number;
  readonly staleIfErrorSeconds: number;
  /** The origin's Cache-Control and Expires set freshness (and no-store/private are obeyed). */
  readonly isOriginCacheControlRespected: boolean;
  readonly originalsShare: number;
  readonly negativeTtlSeconds: number;
  readonly disk: { readonly dir: string; readonly maxBytes: number };
  readonly redisMaxEntryBytes: number;
  readonly coalesceWaitMs: number;
}

export interface RateLimitConfig {
  /** Tokens per second; 0 disables the limiter. */
  readonly perSecond: number;
  readonly burst: number;
  /** With Redis: fall back to per-instance buckets while it is unreachable (else admit). */
  readonly shouldFallBackLocally: boolean;
}

export interface TransformConfig {
  readonly maxSourcePixels: number;
  readonly maxOutputDimension: number;
  readonly maxAnimationFrames: number;
  readonly concurrency: number;
  readonly queue: number;
  readonly timeoutMs: number;
  readonly avifEffort: number;
  readonly allowSvg: boolean;
}

export interface HttpConfig {
  readonly trustProxyHops: number;
  readonly cacheControlMaxAge: number;
  readonly adminToken: string;
  readonly webRoot: string;
  readonly corsOrigin: string;
  readonly shutdownTimeoutMs: number;
  readonly signingKeys: readonly string[];
  readonly maxConnectionsPerClient: number;
  readonly crossOriginResourcePolicy: string;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly sendTimeoutMs: number;
}

export interface LogConfig {
  readonly level: LogLevel;
  readonly pretty: boolean;
}

/** Builds the nested Config from resolved settings (exported so tests can build one from overrides). */
export function buildConfig(
  s: ProxySettings,
  environment: { readonly cgroupLimit?: number | undefined } = { cgroupLimit: readCgroupMemoryLimit() },
): Config {
  const memory = planMemory({
    memoryLimit: s.memoryLimit === "auto" ? undefined : s.memoryLimit,
    cacheMaxBytes: s.cacheMaxBytes === "auto" ? undefined : s.cacheMaxBytes,
    cgroupLimit: environment.cgroupLimit,
    workers: s.workers,
  });
  if ("problem" in memory) throw new ConfigError([memory.problem]);
  const problems: string[] = [];
  if (s.presetsOnly && Object.keys(s.presets).length === 0) {
    problems.push("--presets-only: no preset is defined (--presets): every image URL with options would be refused");
  }
  const tooWide = s.allowedWidths.filter((width) => width > s.maxOutputDimension);
  if (tooWide.length > 0) {
    problems.push(
      `--allowed-widths: ${tooWide.join(", ")} exceed --max-output-dimension ${s.maxOutputDimension}: no URL could ask for them`,
    );
  }
  const redis = redisConfigOf(s);
  if ("problem" in redis) problems.push(redis.problem);
  if (problems.length > 0 || "problem" in redis) throw new ConfigError(problems);
  return deepFreeze({
    port: s.port,
    host: s.host,
    origin: {
      spec: s.origin,
      s3Region: s.s3Region,
      s3Endpoint: s.s3Endpoint,
      maxSourceBytes: s.maxSourceBytes,
      connectTimeoutMs: s.originConnectTimeoutMs,
      headersTimeoutMs: s.originHeadersTimeoutMs,
      bodyTimeoutMs: s.originBodyTimeoutMs,
      totalTimeoutMs: s.originTotalTimeoutMs,
      connections: s.originConnections,
      concurrency: s.originConcurrency,
      queue: s.originQueue,
      maxRedirects: s.maxRedirects,
      allowPrivateOrigins: s.allowPrivateOrigins,
      allowedSources: s.allowedSources,
    },
    cache: {
      maxBytes: memory.cacheMaxBytes,
      maxEntryBytes: s.cacheMaxEntryBytes,
      ttlSeconds: s.cacheTtlSeconds,
      staleWhileRevalidateSeconds: s.staleWhileRevalidateSeconds,
      staleIfErrorSeconds: s.staleIfErrorSeconds,
      isOriginCacheControlRespected: s.originCacheControl === "respect",
      originalsShare: s.cacheOriginalsShare,
      negativeTtlSeconds: s.negativeTtlSeconds,
      disk: { dir: s.diskCacheDir, maxBytes: s.diskCacheMaxBytes },
      redisMaxEntryBytes: s.redisMaxEntryBytes,
      coalesceWaitMs: s.coalesceWaitMs,
    },
    rateLimit: { perSecond: s.rateLimit, burst: s.rateBurst, shouldFallBackLocally: s.rateLimitRedisFallback },
    transform: {
      maxSourcePixels: s.maxSourcePixels,
      maxOutputDimension: s.maxOutputDimension,
      maxAnimationFrames: s.maxAnimationFrames,
      concurrency: s.transformConcurrency,
      queue: s.transformQueue,
      timeoutMs: s.transformTimeoutMs,
      avifEffort: s.avifEffort,
      allowSvg: s.allowSvg,
    },
    http: {
      trustProxyHops: s.trustProxy,
      cacheControlMaxAge: s.cacheControlMaxAge,
      adminToken: s.adminToken,
      webRoot: s.webRoot,
      corsOrigin: s.corsOrigin,
      shutdownTimeoutMs: s.shutdownTimeoutMs,
      signingKeys: s.signingKeys,
      maxConnectionsPerClient: s.maxConnectionsPerClient,
      crossOriginResourcePolicy: s.crossOriginResourcePolicy,
      headersTimeoutMs: s.headersTimeoutMs,
      requestTimeoutMs: s.requestTimeoutMs,
      keepAliveTimeoutMs: s.keepAliveTimeoutMs,
      sendTimeoutMs: s.sendTimeoutMs,
    },
    log: { level: s.logLevel, pretty: s.logPretty },
    workers: s.workers,
    redis,
    memory: { limitBytes: memory.limitBytes, source: memory.source },
    imageOptions: {
      presets: s.presets,
      isPresetsOnly: s.presetsOnly,
      allowedWidths: s.allowedWidths,
      allowedQualities: s.allowedQualities,
      hasClientHints: s.clientHints,
    },
  });
}

function redisConfigOf(s: ProxySettings): RedisConfig | { problem: string } {
  if (s.redisUrl !== "" && s.redisCluster.length > 0) {
    return { problem: "--redis-url and --redis-cluster: set one of them (a single Redis, or a Redis Cluster's seeds)" };
  }
  // A hash tag in the prefix (`{imagika}:`) would put every key in one slot, so one master would hold them all.
  if (s.redisCluster.length > 0 && /\{[^}]+\}/.test(s.redisKeyPrefix)) {
    return {
      problem: `--redis-key-prefix '${s.redisKeyPrefix}': with --redis-cluster it may not hold a {hash tag}: every key would land in one slot, on one master`,
    };
  }
  const target: RedisTarget | undefined =
    s.redisCluster.length > 0
      ? { kind: "cluster", seeds: s.redisCluster }
      : s.redisUrl !== ""
        ? { kind: "single", url: s.redisUrl }
        : undefined;
  return { target, keyPrefix: s.redisKeyPrefix };
}

/** Default settings, for tests and embedders: `buildConfig({ ...defaultSettings(), port: 0 })`. */
export function defaultSettings(): ProxySettings {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(PROXY_SETTINGS)) out[key] = spec.default;
  return out as ProxySettings;
}

/** flag > IMAGIKA_* env > default; throws ConfigError naming every bad setting. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>, argv: readonly string[]): Config {
  const { values } = loadSettings(PROXY_SETTINGS, { env, argv, envPrefix: ENV_PREFIX });
  return buildConfig(values);
}

/** Settings of `imagika origin`. */
export const ORIGIN_SETTINGS = {
  port: setting({
    flag: "port",
    env: "PORT",
    parse: int(0, 65_535),
    default: 8081,
    help: "TCP port of the origin server",
  }),
  host: setting({ flag: "host", env: "HOST", parse: text(), default: "127.0.0.1", help: "Address to bind" }),
  dir: setting({ flag: "dir", env: "DIR", parse: text(), default: "./images", help: "Directory of originals" }),
  latencyMs: setting({
    flag: "latency-ms",
    env: "LATENCY_MS",
    parse: int(0, 60_000),
    default: 0,
    help: "Simulated delay before the first byte",
  }),
  bandwidth: setting({
    flag: "bandwidth",
    env: "BANDWIDTH",
    parse: bandwidth(),
    default: 0,
    defaultLabel: "0 (unlimited)",
    help: "Simulated bandwidth per response body, e.g. 50Mbit",
  }),
};

/** Settings of `imagika samples`. */
export const SAMPLES_SETTINGS = {
  dir: setting({
    flag: "dir",
    env: "DIR",
    parse: text(),
    default: "./images",
    help: "Where to write the sample originals",
  }),
  count: setting({
    flag: "count",
    env: "COUNT",
    parse: int(1, 200),
    default: 12,
    help: "How many originals to generate",
  }),
  seed: setting({
    flag: "seed",
    env: "SEED",
    parse: int(0, 2 ** 31 - 1),
    default: 42,
    help: "Seed: the same seed gives byte-identical files",
  }),
};

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
