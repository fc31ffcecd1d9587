import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { MetricType } from "prom-client";

/** Latency buckets in seconds: memory hits take ~0.1 ms, cold 4K transforms ~100-400 ms, slow origins seconds. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export type Stage = "queue" | "origin" | "transform";

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
  readonly #stages: Histogram<"stage">;
  /**
   * The two per-request metrics are counted here in plain numbers and handed to prom-client when Prometheus scrapes:
   * prom-client hashes and validates the labels on every inc/observe, even through a child from labels(), which was
   * ~3% of a memory hit's CPU in a profile.
   */
  readonly #requestCounts = new Map<string, { labels: Record<"route" | "status" | "cache", string>; value: number }>();
  readonly #duration: PrecountedHistogram;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "imagika_" });
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
      help: "Time spent per stage of a miss: queue (waiting for a transform slot), origin (fetch), transform (sharp)",
      labelNames: ["stage"],
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

  observeStage(stage: Stage, ms: number): void {
    this.#stages.observe({ stage }, ms / 1000);
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
