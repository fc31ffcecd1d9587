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
    ["a shared leaf at the root of src/ importing http", "src/metrics.ts", 'import "./http/server.ts";'],
    ["image-format.ts importing the proxy", "src/image-format.ts", 'import "./proxy/image-proxy.ts";'],
    ["ip.ts importing the cache", "src/ip.ts", 'import "./cache/memory-cache.ts";'],
    ["errors.ts importing log.ts", "src/errors.ts", 'import "./log.ts";'],
    ["config importing errors.ts", "src/config/probe.ts", 'import "../errors.ts";'],
    ["cluster.ts importing http", "src/cluster.ts", 'import "./http/server.ts";'],
    ["scale-out.ts importing http", "src/scale-out.ts", 'import "./http/server.ts";'],
    ["storage importing the wiring", "src/cache/probe.ts", 'import "../scale-out.ts";'],
    ["a fetcher re-exporting the proxy", "src/fetcher/probe.ts", 'export * from "../proxy/image-proxy.ts";'],
    ["http loading redis lazily", "src/http/probe.ts", 'export const load = () => import("redis");'],
    ["the proxy importing sharp", "src/proxy/probe.ts", 'import "sharp";'],
    ["a module at the root of src/ that no row names", "src/new-module.ts", 'import "./errors.ts";'],
    ["the origin server importing the proxy's code", "origin-server/probe.ts", 'import "../src/errors.ts";'],
  ])("refuses %s", async (_name, filePath, code) => {
    const errors = await lintErrors(filePath, code);
    expect(errors.length, `${filePath}: ${code}`).toBeGreaterThan(0);
    expect(errors.join("\n")).not.toMatch(/^parser:/m);
  });

  it.each([
    ["http importing the proxy from a subfolder", "src/http/handlers/probe.ts", 'import "../../proxy/image-proxy.ts";'],
    [
      "the proxy importing the cache and transform",
      "src/proxy/probe.ts",
      'import "../cache/tier.ts"; import "../transform/pipeline.ts";',
    ],
    ["a fetcher importing errors and ip", "src/fetcher/probe.ts", 'import "../errors.ts"; import "../ip.ts";'],
    [
      "a transform step importing sharp and errors",
      "src/transform/steps/probe.ts",
      'import "sharp"; import "../../errors.ts";',
    ],
    ["log.ts importing its config type", "src/log.ts", 'import type {} from "./config/config.ts";'],
    [
      "app.ts importing every part",
      "src/app.ts",
      'import "./http/server.ts"; import "./cache/memory-cache.ts"; import "./scale-out.ts";',
    ],
  ])("allows %s", async (_name, filePath, code) => {
    expect(await lintErrors(filePath, code)).toEqual([]);
  });
});
