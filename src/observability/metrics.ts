import { createRequire } from "node:module";
import { PerformanceObserver, constants as perfConstants, monitorEventLoopDelay } from "node:perf_hooks";
import type { IntervalHistogram } from "node:perf_hooks";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { MetricType } from "prom-client";

const require = createRequire(import.meta.url);

/** Latency buckets in seconds: memory hits take ~0.1 ms, cold 4K transforms ~100-400 ms, slow origins seconds. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export type Stage = "queue" | "origin" | "transform";
/**
 * The `format` label of a stage: the output format of a transform (avif, webp, jpeg, png, gif or thumbhash; the
 * others are here because the handler passes a variant's BodyFormat, so tsc catches a format added there), and
 * "none" for the stages that encode nothing. A fixed set: at most 10 formats per stage.
 */
export type StageFormat = "avif" | "webp" | "jpeg" | "png" | "gif" | "thumbhash" | "svg" | "tiff" | "heif" | "none";

/** A gauge or counter whose value is read at scrape time from counters the parts already keep (no hot-path cost). */
export interface SampledMetric {
  readonly name: string;
  readonly help: string;
  readonly type: "gauge" | "counter";
  readonly labelNames?: readonly string[];
  read(): ReadonlyArray<{ labels?: Record<string, string>; value: number }>;
}

/**
 * Prometheus metrics on prom-client. Per-request work is two cheap observations (a counter and a histogram);
 * everything the proxy already counts (cache bytes, origin fetches, coalescing) is sampled at scrape time.
 */
export class Metrics {
  readonly registry = new Registry();
  /** Stops the event-loop and GC monitors (close()). */
  readonly #stopMonitors: () => void;
  readonly #stages: Histogram<"stage" | "format">;
  /**
   * The two per-request metrics are counted here in plain numbers and handed to prom-client when Prometheus scrapes:
   * prom-client hashes and validates the labels on every inc/observe, even through a child from labels(), which was
   * ~3% of a memory hit's CPU in a profile.
   */
  readonly #requestCounts = new Map<string, { labels: Record<"route" | "status" | "cache", string>; value: number }>();
  readonly #duration: PrecountedHistogram;

  constructor() {
    this.#stopMonitors = registerDefaultMetrics(this.registry);
    this.sample([
      {
        name: "imagika_http_requests_total",
        help: "HTTP requests by route, status and cache result",
        type: "counter",
        labelNames: ["route", "status", "cache"],
        read: () => [...this.#requestCounts.values()],
      },
    ]);
    this.#duration = new PrecountedHistogram({
      name: "imagika_http_request_duration_seconds",
      help: "Time from request to response end, by route",
      labelNames: ["route"],
      buckets: BUCKETS,
      registers: [this.registry],
    });
    this.#stages = new Histogram({
      name: "imagika_stage_duration_seconds",
      help: "Time spent per stage of a miss: queue (waiting for a transform slot), origin (fetch), transform (sharp, by output format)",
      labelNames: ["stage", "format"],
      buckets: BUCKETS,
      registers: [this.registry],
    });
  }

  observeRequest(route: string, status: number, cache: string, ms: number): void {
    const key = `${route} ${status} ${cache}`;
    const counted = this.#requestCounts.get(key);
    if (counted) counted.value++;
    else this.#requestCounts.set(key, { labels: { route, status: String(status), cache }, value: 1 });
    this.#duration.record(route, ms / 1000);
  }

  /** One stage of a miss; `format` only for transforms (a handful of values: the label set stays small). */
  observeStage(stage: Stage, ms: number, format: StageFormat = "none"): void {
    this.#stages.observe({ stage, format }, ms / 1000);
  }

  /** Registers metrics whose values are read from elsewhere when Prometheus scrapes. */
  sample(metrics: readonly SampledMetric[]): void {
    for (const metric of metrics) {
      const labelNames = [...(metric.labelNames ?? [])];
      if (metric.type === "gauge") {
        new Gauge({
          name: metric.name,
          help: metric.help,
          labelNames,
          registers: [this.registry],
          collect(this: Gauge) {
            this.reset();
            for (const { labels = {}, value } of metric.read()) this.set(labels, value);
          },
        });
      } else {
        new Counter({
          name: metric.name,
          help: metric.help,
          labelNames,
          registers: [this.registry],
          collect(this: Counter) {
            this.reset();
            for (const { labels = {}, value } of metric.read()) if (value > 0) this.inc(labels, value);
          },
        });
      }
    }
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Stops the monitors that run between scrapes; the registry can still be rendered. */
  close(): void {
    this.#stopMonitors();
  }
}

/** A prom-client default collector (prom-client/lib/metrics/*.js): registers its metrics, reads them when scraped. */
type DefaultCollector = (registry: Registry, config: { readonly prefix: string }) => void;

function defaultCollector(name: string): DefaultCollector {
  return require(`prom-client/lib/metrics/${name}.js`) as DefaultCollector;
}

/** collectDefaultMetrics' collectors, in its order (the exposition keeps it). */
const DEFAULT_COLLECTORS = [
  "processCpuTotal",
  "processStartTime",
  "osMemoryHeap",
  "processOpenFileDescriptors",
  "processMaxFileDescriptors",
  "eventLoopLag",
  "processResources",
  "processHandles",
  "processRequests",
  "heapSizeAndUsed",
  "heapSpacesSizeAndUsed",
  "version",
  "gc",
];

/**
 * prom-client's default process and Node.js metrics (`process_*`, `nodejs_*`) with their names and help, and a
 * function that stops them. No `imagika_` prefix: the community Node.js dashboards and alerts query these standard
 * names (`process_resident_memory_bytes`, `nodejs_eventloop_lag_seconds`, ...). collectDefaultMetrics starts an
 * event-loop delay histogram (a timer every 10 ms) and a GC observer that nothing can stop, and the observer holds the
 * registry: every closed app stayed in memory, caches included, with its timer running. Those two are built here
 * (monitorEventLoop, observeGc); the other collectors only read the process's state when scraped and are
 * prom-client's own.
 */
function registerDefaultMetrics(registry: Registry): () => void {
  const stops: (() => void)[] = [];
  for (const name of DEFAULT_COLLECTORS) {
    if (name === "eventLoopLag") stops.push(monitorEventLoop(registry));
    else if (name === "gc") stops.push(observeGc(registry));
    else defaultCollector(name)(registry, { prefix: "" });
  }
  return () => {
    for (const stop of stops) stop();
  };
}

type Aggregator = "min" | "max" | "average";
const DELAYS = "of the recorded event loop delays.";

/** The event-loop delay statistics prom-client reports, each read from the histogram at scrape time (nanoseconds). */
const EVENT_LOOP_STATS: ReadonlyArray<{
  stat: string;
  help: string;
  by: Aggregator;
  read: (h: IntervalHistogram) => number;
}> = [
  { stat: "min", help: "The minimum recorded event loop delay.", by: "min", read: (h) => h.min },
  { stat: "max", help: "The maximum recorded event loop delay.", by: "max", read: (h) => h.max },
  { stat: "mean", help: `The mean ${DELAYS}`, by: "average", read: (h) => h.mean },
  { stat: "stddev", help: `The standard deviation ${DELAYS}`, by: "average", read: (h) => h.stddev },
  { stat: "p50", help: `The 50th percentile ${DELAYS}`, by: "average", read: (h) => h.percentile(50) },
  { stat: "p90", help: `The 90th percentile ${DELAYS}`, by: "average", read: (h) => h.percentile(90) },
  { stat: "p99", help: `The 99th percentile ${DELAYS}`, by: "average", read: (h) => h.percentile(99) },
];

/**
 * `nodejs_eventloop_lag_seconds` (the delay of a setImmediate at scrape time, reported at the next scrape) and
 * the delay histogram's statistics since the last scrape, sampled every 10 ms, as prom-client's eventLoopLag collector.
 */
function monitorEventLoop(registry: Registry): () => void {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const lag: Gauge = new Gauge({
    name: "nodejs_eventloop_lag_seconds",
    help: "Lag of event loop in seconds.",
    aggregator: "average",
    registers: [registry],
    collect() {
      const start = process.hrtime.bigint();
      setImmediate(() => lag.set(Number(process.hrtime.bigint() - start) / 1e9));
      for (const { gauge, read } of stats) gauge.set(read(histogram) / 1e9);
      histogram.reset();
    },
  });
  const stats = EVENT_LOOP_STATS.map(({ stat, help, by, read }) => ({
    gauge: new Gauge({
      name: `nodejs_eventloop_lag_${stat}_seconds`,
      help,
      aggregator: by,
      registers: [registry],
    }),
    read,
  }));
  return () => histogram.disable();
}

const GC_KINDS: Readonly<Record<number, string>> = {
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: "major",
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: "minor",
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental",
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: "weakcb",
};

/** `nodejs_gc_duration_seconds` by kind, as prom-client's gc collector (which counted only a batch's first). */
function observeGc(registry: Registry): () => void {
  const durations = new Histogram({
    name: "nodejs_gc_duration_seconds",
    help: "Garbage collection duration by kind, one of major, minor, incremental or weakcb.",
    labelNames: ["kind"],
    buckets: [0.001, 0.01, 0.1, 1, 2, 5],
    registers: [registry],
  });
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const { detail } = entry as { readonly detail?: { readonly kind?: number } | null };
      const kind = GC_KINDS[detail?.kind ?? -1] ?? "unknown";
      durations.observe({ kind }, entry.duration / 1000);
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  return () => observer.disconnect();
}

/** One route's observations: per-bucket counts (not cumulative; the last is +Inf), sum and count. */
interface RouteCounts {
  readonly buckets: number[];
  sum: number;
  count: number;
}

/**
 * A prom-client Histogram whose observations are plain additions (`record`), turned into Prometheus values only in
 * `get()` when scraped. Same name, buckets and exposition as `observe()` would give.
 */
class PrecountedHistogram extends Histogram<"route" | "le"> {
  readonly #name: string;
  readonly #help: string;
  readonly #bounds: readonly number[];
  readonly #routes = new Map<string, RouteCounts>();

  constructor(config: { name: string; help: string; labelNames: "route"[]; buckets: number[]; registers: Registry[] }) {
    super(config);
    this.#name = config.name;
    this.#help = config.help;
    this.#bounds = config.buckets;
  }

  record(route: string, seconds: number): void {
    let counts = this.#routes.get(route);
    if (!counts) {
      counts = { buckets: new Array<number>(this.#bounds.length + 1).fill(0), sum: 0, count: 0 };
      this.#routes.set(route, counts);
    }
    let i = 0;
    while (i < this.#bounds.length && seconds > this.#bounds[i]!) i++; // i <= bounds.length: a bucket index
    counts.buckets[i]!++;
    counts.sum += seconds;
    counts.count++;
  }

  override get(): ReturnType<Histogram<"route" | "le">["get"]> {
    const values: Awaited<ReturnType<Histogram<"route" | "le">["get"]>>["values"] = [];
    for (const [route, counts] of this.#routes) {
      let cumulative = 0;
      for (let i = 0; i <= this.#bounds.length; i++) {
        cumulative += counts.buckets[i]!; // i <= bounds.length = buckets.length - 1
        const le = i < this.#bounds.length ? this.#bounds[i]! : "+Inf";
        values.push({ labels: { le, route }, value: cumulative, metricName: `${this.#name}_bucket` });
      }
      values.push({ labels: { route }, value: counts.sum, metricName: `${this.#name}_sum` });
      values.push({ labels: { route }, value: counts.count, metricName: `${this.#name}_count` });
    }
    return Promise.resolve({
      name: this.#name,
      help: this.#help,
      // prom-client's typings declare MetricType as a numeric enum its JS never uses: the registry writes this string.
      type: "histogram" as unknown as MetricType,
      aggregator: "sum",
      collect: () => undefined,
      values,
    });
  }

  /** The registry renders the text format from this one when it exists (prom-client 15's Histogram has it). */
  getForPromString(): ReturnType<Histogram<"route" | "le">["get"]> {
    return this.get();
  }

  override reset(): void {
    super.reset();
    if (#routes in this) this.#routes.clear(); // the base constructor calls reset() before this class's fields exist
  }
}
