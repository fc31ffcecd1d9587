import type { MemoryCache } from "./cache/memory-cache.ts";
import type { StatsSnapshot } from "./cluster/cluster-stats.ts";
import type { MemoryBudget } from "./memory/memory-budget.ts";
import type { Metrics, SampledMetric } from "./observability/metrics.ts";
import type { ProxyStats } from "./proxy/stats.ts";
import type { ScaleOut } from "./cluster/scale-out.ts";
import type { Transformer } from "./transform/pipeline.ts";

/** What /api/stats and /metrics report: the counters of the parts app.ts built, read when asked. */
export interface AppFigures {
  readonly stats: ProxyStats;
  readonly originals: MemoryCache;
  readonly variants: MemoryCache;
  readonly transformer: Transformer;
  readonly scaleOut: ScaleOut;
  readonly rateLimit: { readonly perSecond: number; readonly burst: number };
  /** The origin as the fetcher describes it. */
  readonly origin: string;
  readonly memory: MemoryBudget;
}

/** This process's /api/stats now. */
export function buildStatsSnapshot(figures: AppFigures): StatsSnapshot {
  const { stats, originals, variants, transformer, scaleOut, rateLimit } = figures;
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
    freshness: {
      revalidations: {
        notModified: stats.revalidationsNotModified,
        modified: stats.revalidationsModified,
        failed: stats.revalidationsFailed,
      },
      originalsChanged: stats.originalsChanged,
      staleServed: { whileRevalidating: stats.staleWhileRevalidate, ifError: stats.staleIfError },
    },
    purgedEntries: stats.purgedEntries,
    cache: {
      entries: o.entries + v.entries,
      bytes: o.bytes + v.bytes,
      maxBytes: o.maxBytes + v.maxBytes,
      evictions: o.evictions + v.evictions,
      originals: o,
      variants: v,
    },
    rateLimit: { perSecond: rateLimit.perSecond, burst: rateLimit.burst },
    tiers: scaleOut.snapshot(),
    origin: figures.origin,
    memory: figures.memory.stats(),
  };
}

/** Registers the metrics sampled from the parts' counters when Prometheus scrapes (Metrics.sample). */
export function registerMetrics(metrics: Metrics, figures: AppFigures): void {
  const { stats, transformer, scaleOut } = figures;
  const tiers = [figures.originals, figures.variants];
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
      name: "imagika_revalidations_total",
      help: "Requests to the origin about a stale original, by result (304 not modified, 200 with bytes, error)",
      type: "counter",
      labelNames: ["result"],
      read: () => [
        { labels: { result: "304" }, value: stats.revalidationsNotModified },
        { labels: { result: "200" }, value: stats.revalidationsModified },
        { labels: { result: "error" }, value: stats.revalidationsFailed },
      ],
    },
    {
      name: "imagika_originals_changed_total",
      help: "Originals the origin replaced with new bytes (their variants dropped in every tier and instance)",
      type: "counter",
      read: () => [{ value: stats.originalsChanged }],
    },
    {
      name: "imagika_stale_served_total",
      help: "Stale entries answered, by reason (while-revalidating: stale-while-revalidate; if-error: the origin failed)",
      type: "counter",
      labelNames: ["reason"],
      read: () => [
        { labels: { reason: "while-revalidating" }, value: stats.staleWhileRevalidate },
        { labels: { reason: "if-error" }, value: stats.staleIfError },
      ],
    },
    {
      name: "imagika_purged_entries_total",
      help: "Cache entries removed by admin purges on this instance (every tier)",
      type: "counter",
      read: () => [{ value: stats.purgedEntries }],
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
    ...memoryMetrics(figures.memory),
    ...scaleOut.metrics,
  ]);
}

/** The process's memory against --memory-limit (issue 18), sampled from the memory budget. */
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
