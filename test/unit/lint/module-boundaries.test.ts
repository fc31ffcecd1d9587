import { ESLint } from "eslint";
import { fileURLToPath } from "node:url";
import tseslint from "typescript-eslint";
import { describe, expect, it } from "vitest";

const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));

/**
 * The repository's own eslint.config.js on small snippets given a path: type-checked rules off, since the snippets are
 * not files the TypeScript project knows. Resolves to the errors ESLint reports.
 */
const eslint = new ESLint({ cwd: REPO_ROOT, overrideConfig: [tseslint.configs.disableTypeChecked] });
async function lintErrors(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(`${code}\n`, { filePath });
  return (result?.messages ?? []).filter((m) => m.severity === 2).map((m) => `${m.ruleId ?? "parser"}: ${m.message}`);
}

describe("module boundaries (eslint.config.js)", () => {
  it.each([
    ["storage importing HTTP", "src/cache/probe.ts", 'import "../http/server.ts";'],
    ["http reaching into the cache from a subfolder", "src/http/handlers/probe.ts", 'import "../../cache/tier.ts";'],
    ["a transform step importing the cache", "src/transform/steps/probe.ts", 'import "../../cache/memory-cache.ts";'],
    ["observability importing http", "src/observability/metrics.ts", 'import "../http/server.ts";'],
    ["observability importing a shared leaf", "src/observability/log.ts", 'import "../shared/ip.ts";'],
    ["image-format.ts importing the proxy", "src/shared/image-format.ts", 'import "../proxy/image-proxy.ts";'],
    ["ip.ts importing the cache", "src/shared/ip.ts", 'import "../cache/memory-cache.ts";'],
    ["a shared leaf importing errors.ts", "src/shared/probe.ts", 'import "../errors.ts";'],
    ["errors.ts importing log.ts", "src/errors.ts", 'import "./observability/log.ts";'],
    ["config importing errors.ts", "src/config/probe.ts", 'import "../errors.ts";'],
    ["config importing observability", "src/config/probe.ts", 'import "../observability/log.ts";'],
    ["cluster/workers.ts importing http", "src/cluster/workers.ts", 'import "../http/server.ts";'],
    ["cluster/workers.ts importing the cache", "src/cluster/workers.ts", 'import "../cache/disk-cache.ts";'],
    ["cluster/workers.ts importing scale-out.ts", "src/cluster/workers.ts", 'import "./scale-out.ts";'],
    ["cluster/cluster-stats.ts importing log.ts", "src/cluster/cluster-stats.ts", 'import "../observability/log.ts";'],
    ["cluster/scale-out.ts importing http", "src/cluster/scale-out.ts", 'import "../http/server.ts";'],
    ["cluster/scale-out.ts importing workers.ts", "src/cluster/scale-out.ts", 'import "./workers.ts";'],
    ["cluster/scale-out.ts importing app.ts", "src/cluster/scale-out.ts", 'import "../app.ts";'],
    ["storage importing the wiring", "src/cache/probe.ts", 'import "../cluster/scale-out.ts";'],
    ["http importing the cluster stats", "src/http/probe.ts", 'import "../cluster/cluster-stats.ts";'],
    ["a file of src/cluster/ that no row names", "src/cluster/new-module.ts", 'import "../errors.ts";'],
    ["a fetcher re-exporting the proxy", "src/fetcher/probe.ts", 'export * from "../proxy/image-proxy.ts";'],
    ["http loading redis lazily", "src/http/probe.ts", 'export const load = () => import("redis");'],
    ["the proxy importing sharp", "src/proxy/probe.ts", 'import "sharp";'],
    ["a module at the root of src/ that no row names", "src/new-module.ts", 'import "./errors.ts";'],
    ["the origin server importing the proxy's code", "origin-server/probe.ts", 'import "../src/errors.ts";'],
  ])("refuses %s", async (name, filePath, code) => {
    const errors = await lintErrors(filePath, code);
    expect(errors.length, `${filePath}: ${code}`).toBeGreaterThan(0);
    expect(errors.join("\n")).not.toMatch(/^parser:/m);
    // Refused by a row, not only because the file has none (that is its own case).
    expect(errors.join("\n")).toMatch(name.includes("no row") ? / is in no row / : / must not import /);
  });

  it.each([
    ["http importing the proxy from a subfolder", "src/http/handlers/probe.ts", 'import "../../proxy/image-proxy.ts";'],
    [
      "the proxy importing the cache and transform",
      "src/proxy/probe.ts",
      'import "../cache/tier.ts"; import "../transform/pipeline.ts";',
    ],
    ["a fetcher importing errors and ip", "src/fetcher/probe.ts", 'import "../errors.ts"; import "../shared/ip.ts";'],
    [
      "http importing the logger and metrics",
      "src/http/probe.ts",
      'import "../observability/log.ts"; import "../observability/metrics.ts";',
    ],
    [
      "a transform step importing sharp and errors",
      "src/transform/steps/probe.ts",
      'import "sharp"; import "../../errors.ts";',
    ],
    ["log.ts importing its config type", "src/observability/log.ts", 'import type {} from "../config/config.ts";'],
    [
      "cluster/workers.ts importing config, cluster-stats, observability and errors",
      "src/cluster/workers.ts",
      'import "../config/config.ts"; import "./cluster-stats.ts"; import "../observability/metrics.ts"; import "../errors.ts";',
    ],
    [
      "cluster/scale-out.ts importing the tiers, the coalescer, the rate limiter and observability",
      "src/cluster/scale-out.ts",
      'import "../cache/disk-cache.ts"; import "../proxy/cluster-coalesce.ts"; import "../rate-limit/redis-store.ts"; import "../observability/log.ts"; import "./cluster-stats.ts";',
    ],
    [
      "app-metrics.ts importing the cluster stats, metrics and scale-out",
      "src/app-metrics.ts",
      'import "./cluster/cluster-stats.ts"; import "./observability/metrics.ts"; import "./cluster/scale-out.ts";',
    ],
    [
      "app.ts importing every part",
      "src/app.ts",
      'import "./http/server.ts"; import "./cache/memory-cache.ts"; import "./cluster/scale-out.ts"; import "./cluster/workers.ts";',
    ],
  ])("allows %s", async (_name, filePath, code) => {
    expect(await lintErrors(filePath, code)).toEqual([]);
  });
});
