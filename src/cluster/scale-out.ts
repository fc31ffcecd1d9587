import type { PurgeScope } from "../cache/cache-key.ts";
import type { ClusterBus, ClusterMessage } from "../cache/cluster-bus.ts";
import { DiskCache } from "../cache/disk-cache.ts";
import type { RedisCache } from "../cache/redis-cache.ts";
import type { RedisConnection } from "../cache/redis-connection.ts";
import { TierHealth } from "../cache/tier-health.ts";
import { TieredCache } from "../cache/tiered-cache.ts";
import type { LowerTier } from "../cache/tiered-cache.ts";
import type { Config } from "../config/config.ts";
import type { Logger } from "../observability/log.ts";
import type { SampledMetric } from "../observability/metrics.ts";
import { ClusterCoalescer } from "../proxy/cluster-coalesce.ts";
import { RedisRateLimiter } from "../rate-limit/redis-store.ts";
import type { RateLimiter } from "../rate-limit/redis-store.ts";
import type { TokenBucketLimiter } from "../rate-limit/token-bucket.ts";

/**
 * How long startup waits for Redis (connected, and the pub/sub subscription active) before serving anyway: until
 * then requests miss the shared tier and purges may be missed.
 */
const REDIS_START_WAIT_MS = 2000;

type TierStat = "bytes" | "entries" | "maxBytes" | "evictions";

/**
 * The parts that let many proxies act as one: disk and Redis tiers, cluster-wide coalescing, the Redis rate limit
 * and purge broadcast. Built by app.ts from the config; every part is absent when its setting is empty.
 */
export interface ScaleOut {
  readonly lower: TieredCache | undefined;
  readonly cluster: ClusterCoalescer | undefined;
  readonly announcePurge: ((scope: PurgeScope) => Promise<void>) | undefined;
  /** The limiter the HTTP layer uses: the Redis one wrapping `local` when Redis is configured. */
  limiter(local: TokenBucketLimiter | undefined): RateLimiter | undefined;
  /** Another instance purged what `scope` names. */
  onRemotePurge(apply: (scope: PurgeScope) => Promise<void>): void;
  /** Samples for the existing per-tier cache gauges (`imagika_cache_bytes{tier="disk"}` and so on). */
  tierSamples(stat: TierStat): { labels: Record<string, string>; value: number }[];
  readonly metrics: readonly SampledMetric[];
  snapshot(): Record<string, unknown>;
  close(): Promise<void>;
}

/**
 * How long the lower tiers keep an entry past its freshness: as long as it may still be served stale. Within that a
 * stale original is also revalidated with a conditional request instead of downloaded again.
 */
function retainStaleSeconds(config: Config): number {
  return Math.max(config.cache.staleWhileRevalidateSeconds, config.cache.staleIfErrorSeconds);
}

/** `now`: the proxy's clock in epoch ms (freshness deadlines in stored entries are on it); tests inject it. */
export async function createScaleOut(config: Config, log: Logger, now?: () => number): Promise<ScaleOut> {
  const tierLog = log.child({ component: "tiers" });
  const diskHealth = new TierHealth({ tier: "disk", log: tierLog });
  const redisHealth = new TierHealth({ tier: "redis", log: tierLog });
  const disk =
    config.cache.disk.dir === ""
      ? undefined
      : await DiskCache.open({
          dir: config.cache.disk.dir,
          maxBytes: config.cache.disk.maxBytes,
          ttlSeconds: config.cache.ttlSeconds,
          retainStaleSeconds: retainStaleSeconds(config),
          health: diskHealth,
          ...(now ? { now } : {}),
        });
  let client: RedisConnection | undefined;
  let redis: RedisCache | undefined;
  let bus: ClusterBus | undefined;
  let cluster: ClusterCoalescer | undefined;
  const { keyPrefix, target } = config.redis;
  let commandTimeoutMs = 0;
  if (target) {
    // The Redis client is loaded only when Redis is configured: the redis package (with its modules) adds ~7.6 MiB
    // to the heap, and every full garbage collection marks it; a cold 4K load runs one every few requests.
    const [{ createRedisConnection, REDIS_COMMAND_TIMEOUT_MS }, { RedisCache }, { ClusterBus }] = await Promise.all([
      import("../cache/redis-connection.ts"),
      import("../cache/redis-cache.ts"),
      import("../cache/cluster-bus.ts"),
    ]);
    commandTimeoutMs = REDIS_COMMAND_TIMEOUT_MS;
    client = createRedisConnection(target, tierLog);
    redis = new RedisCache({
      client,
      keyPrefix,
      maxEntryBytes: config.cache.redisMaxEntryBytes,
      ttlSeconds: config.cache.ttlSeconds,
      retainStaleSeconds: retainStaleSeconds(config),
      health: redisHealth,
      ...(now ? { now } : {}),
    });
    bus = new ClusterBus({ client, keyPrefix, health: redisHealth, log: tierLog });
    cluster = new ClusterCoalescer({
      client,
      bus,
      keyPrefix,
      health: redisHealth,
      waitMs: config.cache.coalesceWaitMs,
    });
    const [isConnected, isSubscribed] = await Promise.all([
      client.whenReady(REDIS_START_WAIT_MS),
      bus.ready(REDIS_START_WAIT_MS),
    ]);
    if (!isConnected || !isSubscribed)
      tierLog.warn({ target: client.target }, "redis not reachable at start; serving without it until it is");
  }
  const tiers: LowerTier[] = [];
  if (disk) tiers.push(disk);
  if (redis) tiers.push(redis);
  const lower = tiers.length > 0 ? new TieredCache(tiers) : undefined;
  let redisLimiter: RedisRateLimiter | undefined;

  const metrics: SampledMetric[] = [
    {
      name: "imagika_tier_failures_total",
      help: "Failed operations per cache tier (each counted as a miss; the first of an outage logs a warning)",
      type: "counter",
      labelNames: ["tier"],
      read: () => [
        { labels: { tier: "disk" }, value: diskHealth.failures },
        { labels: { tier: "redis" }, value: redisHealth.failures },
      ],
    },
    {
      name: "imagika_tier_healthy",
      help: "1 while a configured tier answers, 0 during a failure episode",
      type: "gauge",
      labelNames: ["tier"],
      read: () => [
        ...(disk ? [{ labels: { tier: "disk" }, value: diskHealth.isHealthy ? 1 : 0 }] : []),
        ...(redis ? [{ labels: { tier: "redis" }, value: redisHealth.isHealthy ? 1 : 0 }] : []),
      ],
    },
    {
      name: "imagika_tier_lookups_total",
      help: "Lookups in the tiers below memory, by tier and result",
      type: "counter",
      labelNames: ["tier", "result"],
      read: () => [
        ...(disk
          ? [
              { labels: { tier: "disk", result: "hit" }, value: disk.stats().hits },
              { labels: { tier: "disk", result: "miss" }, value: disk.stats().misses },
            ]
          : []),
        ...(redis
          ? [
              { labels: { tier: "redis", result: "hit" }, value: redis.stats().hits },
              { labels: { tier: "redis", result: "miss" }, value: redis.stats().misses },
            ]
          : []),
      ],
    },
    {
      name: "imagika_redis_written_bytes_total",
      help: "Bytes written to the Redis tier",
      type: "counter",
      read: () => [{ value: redis?.stats().bytesWritten ?? 0 }],
    },
    {
      name: "imagika_cluster_coalesced_total",
      help: "Cold requests served from another instance's fetch/transform (Redis lock + pub/sub)",
      type: "counter",
      read: () => [{ value: cluster?.waited ?? 0 }],
    },
  ];

  return {
    lower,
    cluster,
    announcePurge: bus ? (scope) => bus.publish(purgeMessageOf(scope)) : undefined,
    limiter(local) {
      if (!client || !local) return local;
      redisLimiter = new RedisRateLimiter({
        client: client.untimed, // the limiter times its calls itself (see its options)
        timeoutMs: commandTimeoutMs,
        keyPrefix,
        perSecond: local.perSecond,
        burst: local.burst,
        health: redisHealth,
        fallback: config.rateLimit.shouldFallBackLocally ? local : undefined,
      });
      return redisLimiter;
    },
    onRemotePurge(apply) {
      bus?.on((message, isOwn) => {
        const scope = isOwn ? undefined : purgeScopeOf(message);
        if (!scope) return;
        apply(scope).catch((error: unknown) => tierLog.warn({ err: String(error) }, "remote purge failed"));
      });
    },
    tierSamples(stat) {
      if (!disk) return [];
      return [{ labels: { tier: "disk" }, value: disk.stats()[stat] }];
    },
    metrics,
    snapshot: () => ({
      ...(disk ? { disk: disk.stats() } : {}),
      ...(redis
        ? {
            redis: {
              ...redis.stats(),
              clusterWaited: cluster?.waited ?? 0,
              clusterProduced: cluster?.produced ?? 0,
              rateLimitFallbackDecisions: redisLimiter?.fallbackDecisions ?? 0,
            },
          }
        : {}),
    }),
    async close() {
      await client?.close();
    },
  };
}

/**
 * The bus message announcing a purge; `purge` keeps the shape older instances understand (path, null = all). The
 * variants of a changed original go out as the whole path: the other instances' copies of the original are old too.
 */
function purgeMessageOf(scope: PurgeScope): ClusterMessage {
  switch (scope.kind) {
    case "all":
      return { type: "purge", path: null };
    case "path":
    case "variants":
      return { type: "purge", path: scope.path };
    case "prefix":
      return { type: "purge-prefix", prefix: scope.prefix };
  }
}

/** The purge a bus message announces; undefined for other messages. */
function purgeScopeOf(message: ClusterMessage): PurgeScope | undefined {
  switch (message.type) {
    case "purge":
      return message.path === null ? { kind: "all" } : { kind: "path", path: message.path };
    case "purge-prefix":
      return { kind: "prefix", prefix: message.prefix };
    case "done":
      return undefined;
  }
}
