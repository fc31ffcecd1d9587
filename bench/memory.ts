/**
 * `npm run bench:memory`: the memory scenario of issue 18 on its own. Starts an origin with any number of distinct 4K
 * JPEGs, then for each configuration (allocator environment, proxy flags) starts Imagika, runs the loads and samples
 * the proxy process's RSS: peak (VmHWM), RSS 15 s after, req/s and shed share. Configurations run interleaved, one
 * after another on the same machine, so their figures compare. Writes bench/results/memory.{json,md}.
 *
 *   --only mixed16,mixed64,herd,distinct   scenarios (default all)
 *   --configs <name,...>                   configurations from CONFIGS (default: shipped, glibc)
 *   --duration-s 45                        length of each mixed load
 *   --rounds 1                             repeat the configurations this many times
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { generateSamples } from "../origin-server/samples.ts";
import { installCleanup, stopAllChildren } from "./lib/children.ts";
import { startImagika } from "./lib/imagika.ts";
import {
  readStatusBytes,
  RssSampler,
  runAvifHerd,
  runDistinctOriginals,
  runMixedMemoryLoad,
  startManyOriginalsOrigin,
} from "./lib/memory.ts";
import type { LoadResult } from "./lib/memory.ts";
import { findFreePort } from "./lib/system.ts";

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const RESULTS_DIR = join(BENCH_DIR, "results");
const SAMPLES_DIR = resolve(BENCH_DIR, "../images-bench-memory");
const MiB = 1024 * 1024;

interface MemoryConfig {
  readonly name: string;
  readonly env: Record<string, string>;
  readonly nodeFlags?: readonly string[];
  /** Flags per scenario are added by the scenario (--memory-limit or --cache-max-bytes). */
  readonly extraArgs?: readonly string[];
}

const JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";

const CONFIGS: Record<string, MemoryConfig> = {
  glibc: { name: "glibc", env: { IMAGIKA_ALLOCATOR: "system" } },
  arena2: { name: "glibc MALLOC_ARENA_MAX=2", env: { IMAGIKA_ALLOCATOR: "system", MALLOC_ARENA_MAX: "2" } },
  glibcTuned: {
    name: "glibc arena 2 + fixed mmap/trim thresholds",
    env: {
      IMAGIKA_ALLOCATOR: "system",
      MALLOC_ARENA_MAX: "2",
      MALLOC_MMAP_THRESHOLD_: "131072",
      MALLOC_TRIM_THRESHOLD_: "131072",
    },
  },
  jemalloc: { name: "jemalloc (Debian default conf)", env: { IMAGIKA_ALLOCATOR: "system", LD_PRELOAD: JEMALLOC } },
  jemallocTuned: {
    name: "jemalloc background_thread, decay 1 s",
    env: {
      IMAGIKA_ALLOCATOR: "system",
      LD_PRELOAD: JEMALLOC,
      MALLOC_CONF: "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2",
    },
  },
  // What bin/imagika.js starts when libjemalloc2 is installed (its JEMALLOC_CONF and NODE_FLAGS).
  shipped: {
    name: "as shipped: jemalloc + --expose-gc",
    env: {
      IMAGIKA_ALLOCATOR: "system",
      LD_PRELOAD: JEMALLOC,
      MALLOC_CONF: "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2",
    },
    nodeFlags: ["--no-memory-reducer", "--expose-gc"],
  },
  shippedGlibc: {
    name: "as shipped without libjemalloc2: tuned glibc + --expose-gc",
    env: {
      IMAGIKA_ALLOCATOR: "system",
      MALLOC_ARENA_MAX: "2",
      MALLOC_MMAP_THRESHOLD_: "131072",
      MALLOC_TRIM_THRESHOLD_: "131072",
    },
    nodeFlags: ["--no-memory-reducer", "--expose-gc"],
  },
};

interface Scenario {
  readonly name: string;
  readonly proxyArgs: readonly string[];
  readonly run: (url: string, seed: number) => Promise<LoadResult>;
  /** Budget the peak RSS is compared with. */
  readonly limitBytes: number | undefined;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: "string", default: "mixed16,mixed64,herd,distinct" },
      configs: { type: "string", default: "shipped,glibc" },
      "duration-s": { type: "string", default: "45" },
      rounds: { type: "string", default: "1" },
      "memory-limit": { type: "string", default: "512MiB" },
      "no-limit": { type: "boolean", default: false },
    },
  });
  installCleanup(() => undefined);
  const durationMs = Number(values["duration-s"]) * 1000;
  const jpegs = await loadJpegs();
  const origin = await startManyOriginalsOrigin(jpegs);
  const limited = !values["no-limit"];
  const mixedArgs = limited ? ["--memory-limit", values["memory-limit"]] : ["--cache-max-bytes", "64MiB"];
  const scenarios: Scenario[] = [
    {
      name: "mixed, 16 clients",
      proxyArgs: mixedArgs,
      run: (url, seed) => runMixedMemoryLoad({ url, clients: 16, durationMs, seed }),
      limitBytes: limited ? 512 * MiB : undefined,
    },
    {
      name: "mixed, 64 clients",
      proxyArgs: mixedArgs,
      run: (url, seed) => runMixedMemoryLoad({ url, clients: 64, durationMs, seed }),
      limitBytes: limited ? 512 * MiB : undefined,
    },
    {
      name: "AVIF herd, 200 + 12 cold",
      proxyArgs: limited ? ["--memory-limit", "384MiB"] : ["--cache-max-bytes", "384MiB"],
      run: (url, seed) => runAvifHerd({ url, clients: 200, others: 12, firstOriginal: seed * 1000 }),
      limitBytes: limited ? 384 * MiB : undefined,
    },
    {
      name: "120 distinct originals, 20 MiB cache",
      proxyArgs: ["--cache-max-bytes", "20MiB", ...(limited ? ["--memory-limit", values["memory-limit"]] : [])],
      run: (url, seed) => runDistinctOriginals({ url, count: 120, concurrency: 8, firstOriginal: seed * 1000 }),
      limitBytes: undefined,
    },
  ];
  const wanted = new Set(values.only.split(","));
  const keys = ["mixed16", "mixed64", "herd", "distinct"];
  const chosen = scenarios.filter((_, i) => wanted.has(keys[i]!)); // same length
  const configs = values.configs.split(",").map((name) => {
    const config = CONFIGS[name];
    if (!config) throw new Error(`unknown config ${name}; known: ${Object.keys(CONFIGS).join(", ")}`);
    return config;
  });
  const rows: Record<string, unknown>[] = [];
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const scenario of chosen) {
      for (const config of configs) {
        const row = await runOne(origin.url, scenario, config, round + 1);
        rows.push(row);
        console.log(JSON.stringify(row));
      }
    }
  }
  await origin.close();
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, "memory.json"), `${JSON.stringify(rows, null, 2)}\n`);
  writeFileSync(join(RESULTS_DIR, "memory.md"), formatMarkdown(rows));
  console.log(formatMarkdown(rows));
  await stopAllChildren();
}

async function runOne(
  originUrl: string,
  scenario: Scenario,
  config: MemoryConfig,
  seed: number,
): Promise<Record<string, unknown>> {
  const port = await findFreePort();
  const proxy = await startImagika({
    originUrl,
    port,
    logPath: "/dev/null",
    stderrPath: join(RESULTS_DIR, "memory-stderr.log"),
    placement: { cpus: undefined, niceness: 0 },
    extraArgs: [...scenario.proxyArgs, "--origin-concurrency", "8", ...(config.extraArgs ?? [])],
    logLevel: "warn",
    env: { ...process.env, ...config.env },
    ...(config.nodeFlags ? { nodeFlags: config.nodeFlags } : {}),
  });
  await sleep(1000);
  const startRss = readStatusBytes(proxy.pid, "VmRSS");
  const sampler = new RssSampler(proxy.pid);
  const result = await scenario.run(proxy.url, seed);
  const peak = sampler.peakBytes();
  const atEnd = sampler.sample();
  await sleep(15_000);
  const after = sampler.sample();
  sampler.stop();
  const stats = (await (await fetch(`${proxy.url}/api/stats`)).json()) as {
    cache: { bytes: number };
    memory?: unknown;
  };
  await proxy.stop();
  const ok = result.byStatus["200"] ?? 0;
  return {
    scenario: scenario.name,
    config: config.name,
    round: seed,
    startMiB: round1(startRss / MiB),
    peakMiB: round1(peak / MiB),
    endMiB: round1(atEnd / MiB),
    after15sMiB: round1(after / MiB),
    cacheMiB: round1(stats.cache.bytes / MiB),
    limitMiB: scenario.limitBytes === undefined ? null : scenario.limitBytes / MiB,
    requests: result.requests,
    reqPerSecond: round1(result.requests / (result.durationMs / 1000)),
    okShare: round1((100 * ok) / result.requests),
    byStatus: result.byStatus,
    shedWithRetryAfter: result.shedWithRetryAfter,
    memory: stats.memory,
  };
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

function formatMarkdown(rows: readonly Record<string, unknown>[]): string {
  const header =
    "| scenario | config | start MiB | peak MiB | limit MiB | 15 s after MiB | cache MiB | req/s | 200 % | statuses |\n|---|---|---|---|---|---|---|---|---|---|\n";
  return (
    header +
    rows
      .map(
        (r) =>
          `| ${String(r.scenario)} | ${String(r.config)} | ${String(r.startMiB)} | ${String(r.peakMiB)} | ${typeof r.limitMiB === "number" ? r.limitMiB : "-"} | ${String(r.after15sMiB)} | ${String(r.cacheMiB)} | ${String(r.reqPerSecond)} | ${String(r.okShare)} | ${JSON.stringify(r.byStatus)} |`,
      )
      .join("\n") +
    "\n"
  );
}

/** The sample library's JPEGs (generated once into images-bench-memory/, git-ignored). */
async function loadJpegs(): Promise<Buffer[]> {
  const list = (): string[] =>
    readdirSync(SAMPLES_DIR, { withFileTypes: true })
      .filter((entry) => entry.isFile() && entry.name.endsWith(".jpg"))
      .map((entry) => join(SAMPLES_DIR, entry.name));
  let files: string[] = [];
  try {
    files = list();
  } catch {
    /* not generated yet */
  }
  if (files.length < 10) {
    console.log("generating 12 sample 4K originals (first run only)");
    await generateSamples({ dir: SAMPLES_DIR, count: 12, seed: 42 });
    files = list();
  }
  return files.map((file) => readFileSync(file));
}

await main();
