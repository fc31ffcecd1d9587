import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOriginServer } from "../../origin-server/server.ts";
import type { RunningOrigin } from "../../origin-server/server.ts";
import type { App } from "../../src/app.ts";
import { makeJpeg } from "../helpers/images.ts";
import { parsePrometheusText, promqlSelectors, resolveFamily } from "../helpers/prometheus.ts";
import type { MetricFamily, Selector } from "../helpers/prometheus.ts";
import { startProxy } from "../helpers/proxy.ts";
import { connectRedis, deletePrefix, SHARED_REDIS_URL, uniquePrefix } from "../helpers/redis.ts";

/**
 * deploy/grafana/imagika.json against the real proxy's /metrics: every metric its PromQL names must be one the proxy
 * exposes, so a renamed metric breaks this test instead of silently emptying a panel.
 */
const DASHBOARD = new URL("../../deploy/grafana/imagika.json", import.meta.url);
/** Labels Prometheus adds when it scrapes (job, instance) or the cluster view adds under --workers (worker). */
const ADDED_LABELS = new Set(["job", "instance", "worker"]);
const DATASOURCE = { type: "prometheus", uid: "${DS_PROMETHEUS}" };

interface Target {
  readonly expr: string;
  readonly datasource: unknown;
}
interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly datasource?: unknown;
  readonly targets?: readonly Target[];
  readonly panels?: readonly Panel[];
}
interface Dashboard {
  readonly __inputs: ReadonlyArray<{ name: string; type: string; pluginId: string }>;
  readonly panels: readonly Panel[];
  readonly templating: { list: ReadonlyArray<{ name: string; datasource: unknown; query: { query: string } }> };
}

const dashboard = JSON.parse(await readFile(DASHBOARD, "utf8")) as Dashboard;
const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);

/** Every metric selector the dashboard uses, with where: panel targets and `label_values(<selector>, <label>)`. */
function dashboardSelectors(): Array<Selector & { where: string }> {
  const found: Array<Selector & { where: string }> = [];
  for (const panel of panels) {
    for (const { expr } of panel.targets ?? []) {
      for (const selector of promqlSelectors(expr)) found.push({ ...selector, where: `panel "${panel.title}"` });
    }
  }
  for (const variable of dashboard.templating.list) {
    const labelValues = /^label_values\((.+),\s*([a-zA-Z_]\w*)\)$/.exec(variable.query.query);
    if (!labelValues)
      throw new Error(`variable ${variable.name}: expected label_values(...), got ${variable.query.query}`);
    for (const selector of promqlSelectors(labelValues[1]!)) found.push({ ...selector, where: `$${variable.name}` });
  }
  return found;
}

describe("PromQL selectors and the text format (the checker itself)", () => {
  it("takes metric names, not functions, keywords, grouping labels, ranges or strings", () => {
    const expr =
      'histogram_quantile(0.99, sum by (le, stage) (rate(a_seconds_bucket{stage="transform", job=~"$job"}[$__rate_interval])))' +
      ' / on (instance) group_left sum without (worker) (b_bytes) or vector(0) and c_total{x!="a}b"} offset 5m';
    expect(promqlSelectors(expr)).toEqual([
      { name: "a_seconds_bucket", labelNames: ["stage", "job"] },
      { name: "b_bytes", labelNames: [] },
      { name: "c_total", labelNames: ["x"] },
      { name: "m", labelNames: [] }, // `offset 5m` outside brackets: not parsed, but it fails loudly (no metric "m")
    ]);
  });

  it("strips _bucket, _sum and _count only for the histograms and summaries that expose them", () => {
    const families = parsePrometheusText(
      [
        "# TYPE h_seconds histogram",
        'h_seconds_bucket{le="0.1",stage="x"} 1',
        "h_seconds_sum 0.05",
        "h_seconds_count 1",
        "# TYPE g_bytes gauge",
        "g_bytes 3",
        "# TYPE jobs_count gauge",
        "jobs_count 2",
      ].join("\n"),
    );
    const name = (series: string) => resolveFamily(families, series)?.name;
    expect(name("h_seconds_bucket")).toBe("h_seconds");
    expect(name("h_seconds_count")).toBe("h_seconds");
    expect(name("h_seconds")).toBe("h_seconds");
    expect(name("jobs_count")).toBe("jobs_count");
    expect(name("g_bytes_count")).toBeUndefined(); // a gauge has no _count series
    expect(name("g_bytes_bucket")).toBeUndefined();
    expect(families.get("h_seconds")?.labelNames).toEqual(new Set(["stage"]));
  });
});

describe("the Grafana dashboard against the real proxy's /metrics", () => {
  let dir: string;
  let origin: RunningOrigin;
  let proxy: App;
  let exposition: string;
  let families: Map<string, MetricFamily>;
  const redisPrefix = uniquePrefix();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "imagika-dashboard-"));
    await writeFile(join(dir, "a.jpg"), await makeJpeg(320, 200, 1));
    origin = await startOriginServer({ dir, port: 0, host: "127.0.0.1", latencyMs: 0, bandwidthBytesPerSecond: 0 });
    // Redis and a disk tier as in production, so the tier panels' series exist (Redis runs on every machine here).
    proxy = await startProxy({
      origin: origin.url,
      redisUrl: SHARED_REDIS_URL,
      redisKeyPrefix: redisPrefix,
      diskCacheDir: join(dir, "disk-cache"),
    });
    const get = async (path: string): Promise<string | null> => {
      const res = await fetch(`${proxy.url}${path}`);
      await res.arrayBuffer();
      expect(res.status).toBe(200);
      return res.headers.get("x-cache");
    };
    expect(await get("/img/a.jpg?w=64&f=webp")).toBe("MISS"); // origin fetch + transform
    expect(await get("/img/a.jpg?w=64&f=webp")).toBe("HIT");
    expect(await get("/img/a.jpg?w=48&f=avif")).toBe("MISS"); // original from memory, a second format
    exposition = await (await fetch(`${proxy.url}/metrics`)).text();
    families = parsePrometheusText(exposition);
  });

  afterAll(async () => {
    await proxy?.close();
    await origin?.close();
    const redis = await connectRedis();
    await deletePrefix(redis, redisPrefix);
    await redis.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("is an importable dashboard with a ${DS_PROMETHEUS} datasource input", () => {
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: "DS_PROMETHEUS", pluginId: "prometheus" })]);
    const ids = panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of panels.filter((p) => p.type !== "row")) {
      expect({ panel: panel.title, datasource: panel.datasource }).toEqual({
        panel: panel.title,
        datasource: DATASOURCE,
      });
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.datasource).toEqual(DATASOURCE);
    }
    for (const variable of dashboard.templating.list) expect(variable.datasource).toEqual(DATASOURCE);
  });

  it("names only metrics that /metrics exposes, with labels they carry", () => {
    const selectors = dashboardSelectors();
    const names = new Set(selectors.map((s) => s.name));
    // The checker found what the panels are about (and nothing that is not a metric of ours or of prom-client).
    for (const name of [
      "imagika_stage_duration_seconds_bucket",
      "imagika_stage_duration_seconds_count",
      "imagika_memory_rss_bytes",
      "imagika_memory_limit_bytes",
      "imagika_tier_healthy",
      "process_cpu_seconds_total",
      "nodejs_heap_size_used_bytes",
      "nodejs_eventloop_lag_p99_seconds",
    ]) {
      expect(names).toContain(name);
    }
    for (const name of names) expect(name).toMatch(/^(imagika|process|nodejs)_/);

    const problems: string[] = [];
    for (const { name, labelNames, where } of selectors) {
      const family = resolveFamily(families, name);
      if (!family) {
        problems.push(`${where}: ${name} is not in /metrics`);
        continue;
      }
      if (family.samples === 0) continue; // declared, no series yet (a labelled counter still at 0): names only
      for (const label of labelNames) {
        if (!ADDED_LABELS.has(label) && !family.labelNames.has(label))
          problems.push(`${where}: ${name} has no label "${label}" (it has ${[...family.labelNames].join(", ")})`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("finds the series behind the stage, format, memory and Redis panels", () => {
    expect(families.get("imagika_stage_duration_seconds")?.labelNames).toEqual(new Set(["stage", "format"]));
    for (const series of [
      'imagika_stage_duration_seconds_count{stage="origin",format="none"} 1',
      'imagika_stage_duration_seconds_count{stage="transform",format="webp"} 1',
      'imagika_stage_duration_seconds_count{stage="transform",format="avif"} 1',
      'imagika_tier_healthy{tier="redis"} 1',
      'imagika_tier_healthy{tier="disk"} 1',
    ]) {
      expect(exposition.split("\n")).toContain(series);
    }
    for (const name of ["imagika_memory_rss_bytes", "imagika_memory_limit_bytes", "nodejs_eventloop_lag_p99_seconds"]) {
      expect(families.get(name)?.samples, name).toBe(1);
    }
  });
});
