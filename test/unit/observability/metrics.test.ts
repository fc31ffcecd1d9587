import { Registry, collectDefaultMetrics } from "prom-client";
import { describe, expect, it } from "vitest";
import { Metrics } from "../../../src/observability/metrics.ts";

/** The value of one exposition line, e.g. `name{a="b"} 3`. */
function valueOf(text: string, line: string): number | undefined {
  const found = text.split("\n").find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe("Metrics", () => {
  it("counts requests by route, status and cache result", async () => {
    const metrics = new Metrics();
    metrics.observeRequest("img", 200, "hit", 0.2);
    metrics.observeRequest("img", 200, "hit", 0.2);
    metrics.observeRequest("img", 404, "none", 1);
    metrics.observeRequest("stats", 200, "none", 1);
    const { body } = await metrics.render();
    expect(valueOf(body, 'imagika_http_requests_total{route="img",status="200",cache="hit"}')).toBe(2);
    expect(valueOf(body, 'imagika_http_requests_total{route="img",status="404",cache="none"}')).toBe(1);
    expect(valueOf(body, 'imagika_http_requests_total{route="stats",status="200",cache="none"}')).toBe(1);
    expect(body).toContain("# TYPE imagika_http_requests_total counter");
  });

  it("exposes request durations as a cumulative histogram per route, in seconds", async () => {
    const metrics = new Metrics();
    metrics.observeRequest("img", 200, "hit", 0.3); // 0.0003 s: the first bucket (0.0005)
    metrics.observeRequest("img", 200, "miss", 7); // 0.007 s: the 0.01 bucket
    metrics.observeRequest("img", 200, "miss", 10); // exactly 0.01 s: still the 0.01 bucket (le is inclusive)
    metrics.observeRequest("img", 504, "none", 20_000); // 20 s: beyond the last bound, +Inf only
    metrics.observeRequest("static", 200, "none", 2);
    const { body } = await metrics.render();
    const bucket = (le: string, route = "img"): number | undefined =>
      valueOf(body, `imagika_http_request_duration_seconds_bucket{le="${le}",route="${route}"}`);
    expect(body).toContain("# TYPE imagika_http_request_duration_seconds histogram");
    expect(bucket("0.0005")).toBe(1);
    expect(bucket("0.005")).toBe(1);
    expect(bucket("0.01")).toBe(3);
    expect(bucket("10")).toBe(3);
    expect(bucket("+Inf")).toBe(4);
    expect(bucket("0.0025", "static")).toBe(1);
    expect(bucket("+Inf", "static")).toBe(1);
    expect(valueOf(body, 'imagika_http_request_duration_seconds_count{route="img"}')).toBe(4);
    expect(valueOf(body, 'imagika_http_request_duration_seconds_sum{route="img"}')).toBeCloseTo(20.0173, 6);
  });

  it("exposes prom-client's default process and Node.js metrics under their standard names, and can stop them", async () => {
    const reference = new Registry();
    collectDefaultMetrics({ register: reference }); // its GC observer stays for this worker's life
    const shape = (registry: Registry) =>
      registry
        .getMetricsAsArray()
        .filter((metric) => /^(process|nodejs)_/.test(metric.name))
        .map(({ name, help, type, aggregator }) => ({ name, help, type, aggregator }));
    const metrics = new Metrics();
    expect(shape(metrics.registry)).toEqual(shape(reference));
    expect(shape(metrics.registry).length).toBeGreaterThan(20);
    metrics.close();
    const { body } = await metrics.render(); // still renders after close
    expect(body).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
    expect(body).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(body).not.toMatch(/^imagika_(process|nodejs)_/m); // the prefix broke the community Node.js dashboards
  });

  it('labels stage times with the output format of transforms and "none" for the other stages', async () => {
    const metrics = new Metrics();
    metrics.observeStage("origin", 20);
    metrics.observeStage("queue", 1);
    metrics.observeStage("transform", 30, "avif");
    metrics.observeStage("transform", 10, "webp");
    metrics.observeStage("transform", 12, "webp");
    const { body } = await metrics.render();
    const count = (labels: string) => valueOf(body, `imagika_stage_duration_seconds_count{${labels}}`);
    expect(count('stage="origin",format="none"')).toBe(1);
    expect(count('stage="queue",format="none"')).toBe(1);
    expect(count('stage="transform",format="avif"')).toBe(1);
    expect(count('stage="transform",format="webp"')).toBe(2);
    expect(valueOf(body, 'imagika_stage_duration_seconds_sum{stage="transform",format="webp"}')).toBeCloseTo(0.022, 9);
  });
});
