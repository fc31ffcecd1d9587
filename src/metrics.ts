import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

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
  readonly #requests: Counter<"route" | "status" | "cache">;
  readonly #duration: Histogram<"route">;
  readonly #stages: Histogram<"stage">;
  /**
   * Label children resolved once per label set. This saves building the label object per request, not the hashing:
   * a prom-client child still hashes and validates its labels on every call (~3% of a memory hit's CPU in a profile).
   */
  readonly #requestChildren = new Map<string, { inc(): void }>();
  readonly #durationChildren = new Map<string, { observe(value: number): void }>();

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "imagika_" });
    this.#requests = new Counter({
      name: "imagika_http_requests_total",
      help: "HTTP requests by route, status and cache result",
      labelNames: ["route", "status", "cache"],
      registers: [this.registry],
    });
    this.#duration = new Histogram({
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
    let counter = this.#requestChildren.get(key);
    if (!counter) {
      counter = this.#requests.labels(route, String(status), cache);
      this.#requestChildren.set(key, counter);
    }
    counter.inc();
    let histogram = this.#durationChildren.get(route);
    if (!histogram) {
      histogram = this.#duration.labels(route);
      this.#durationChildren.set(route, histogram);
    }
    histogram.observe(ms / 1000);
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
