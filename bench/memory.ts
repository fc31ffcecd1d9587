/**
 * `npm run bench:memory`: the memory scenario of issue 18 on its own. Starts an origin with any number of distinct 4K
 * JPEGs, then for each configuration (allocator environment, proxy flags) starts Imagika, runs the loads and samples
 * the proxy process's RSS: peak (VmHWM), RSS 15 s after, req/s and shed share. Configurations run interleaved, one
 * after another on the same machine, so their figures compare. Writes bench/results/memory.{json,md}.
 *
 *   --only mixed16,mixed64,herd,distinct   scenarios (default all)
 *   --configs <name,...>                   configurations from CONFIGS (default: before,shipped,shippedGlibc)
 *   --duration-s 45                        length of each mixed load
 *   --rounds 1                             repeat the configurations this many times
 *   --quick                                10 s loads, the shipped configuration beside "before" only
 *   --render <file.json>                   rewrite memory.md and memory.svg from saved rows (no load)
 *   --out <name>                           write bench/results/<name>.{json,md,svg} (default memory)
 *
 * `npm run bench` runs it after bench/run.ts with the same arguments: flags of run.ts it does not know are ignored.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { generateSamples } from "../origin-server/samples.ts";
import { renderBarChart } from "./lib/charts.ts";
import type { Chart } from "./lib/charts.ts";
import { installCleanup, stopAllChildren } from "./lib/children.ts";
import { startImagika } from "./lib/imagika.ts";
import {
  ipxPathMapper,
  readStatusBytes,
  RssSampler,
  runAvifHerd,
  runDistinctOriginals,
  runMixedMemoryLoad,
  startManyOriginalsOrigin,
} from "./lib/memory.ts";
import type { LoadResult, PathMapper } from "./lib/memory.ts";
import { ensureIpx, startIpx } from "./lib/ipx.ts";
import { findFreePort } from "./lib/system.ts";

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const RESULTS_DIR = join(BENCH_DIR, "results");
const SAMPLES_DIR = resolve(BENCH_DIR, "../images-bench-memory");
const MiB = 1024 * 1024;

interface MemoryConfig {
  readonly name: string;
  readonly env: Record<string, string>;
  readonly nodeFlags?: readonly string[];
  /** Runs with the scenario's --memory-limit; otherwise the budget is lifted (--memory-limit 64GiB), as before it existed. */
  readonly isLimited: boolean;
  /** The server: Imagika (default) or ipx, the peer that can run the same load (it has no memory setting). */
  readonly system?: "ipx";
}

const JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
/** bin/imagika.js's JEMALLOC_CONF and NODE_FLAGS, what it starts when libjemalloc2 is installed (deploy.test.ts pins them). */
const SHIPPED_MALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2";
const SHIPPED_NODE_FLAGS = ["--no-memory-reducer", "--expose-gc"];

const CONFIGS: Record<string, MemoryConfig> = {
  // How Imagika ran before issue 18: glibc as shipped, only --no-memory-reducer, no process budget.
  before: { name: "before: glibc, no limit", env: { IMAGIKA_ALLOCATOR: "system" }, isLimited: false },
  glibc: { name: "glibc", env: { IMAGIKA_ALLOCATOR: "system" }, isLimited: false },
  arena2: {
    name: "glibc MALLOC_ARENA_MAX=2",
    env: { IMAGIKA_ALLOCATOR: "system", MALLOC_ARENA_MAX: "2" },
    isLimited: false,
  },
  glibcTuned: {
    name: "glibc arena 2 + fixed mmap/trim thresholds",
    isLimited: false,
    env: {
      IMAGIKA_ALLOCATOR: "system",
      MALLOC_ARENA_MAX: "2",
      MALLOC_MMAP_THRESHOLD_: "131072",
      MALLOC_TRIM_THRESHOLD_: "131072",
    },
  },
  jemalloc: {
    name: "jemalloc (Debian default conf)",
    env: { IMAGIKA_ALLOCATOR: "system", LD_PRELOAD: JEMALLOC },
    isLimited: false,
  },
  jemallocTuned: {
    name: "jemalloc background_thread, decay 1 s",
    isLimited: false,
    env: {
      IMAGIKA_ALLOCATOR: "system",
      LD_PRELOAD: JEMALLOC,
      MALLOC_CONF: SHIPPED_MALLOC_CONF,
    },
  },
  // What bin/imagika.js starts when libjemalloc2 is installed (its JEMALLOC_CONF and NODE_FLAGS).
  shipped: {
    name: "as shipped: jemalloc + --expose-gc",
    env: {
      IMAGIKA_ALLOCATOR: "system",
      LD_PRELOAD: JEMALLOC,
      MALLOC_CONF: SHIPPED_MALLOC_CONF,
    },
    nodeFlags: SHIPPED_NODE_FLAGS,
    isLimited: true,
  },
  shippedNoLimit: {
    name: "shipped allocator and flags, no limit",
    env: {
      IMAGIKA_ALLOCATOR: "system",
      LD_PRELOAD: JEMALLOC,
      MALLOC_CONF: SHIPPED_MALLOC_CONF,
    },
    nodeFlags: SHIPPED_NODE_FLAGS,
    isLimited: false,
  },
  shippedArena2: {
    name: "glibc MALLOC_ARENA_MAX=2 + --expose-gc, limited",
    env: { IMAGIKA_ALLOCATOR: "system", MALLOC_ARENA_MAX: "2" },
    nodeFlags: SHIPPED_NODE_FLAGS,
    isLimited: true,
  },
  ipx: { name: "ipx 3.1.1 (glibc as shipped)", env: {}, isLimited: false, system: "ipx" },
  shippedGlibc: {
    name: "as shipped without libjemalloc2: tuned glibc + --expose-gc",
    env: {
      IMAGIKA_ALLOCATOR: "system",
      MALLOC_ARENA_MAX: "2",
      MALLOC_MMAP_THRESHOLD_: "131072",
      MALLOC_TRIM_THRESHOLD_: "131072",
    },
    nodeFlags: SHIPPED_NODE_FLAGS,
    isLimited: true,
  },
};

interface Scenario {
  readonly key: string;
  readonly name: string;
  /** Proxy flags with the budget on, and without it (how the load was run before issue 18). */
  readonly limitedArgs: readonly string[];
  readonly unlimitedArgs: readonly string[];
  readonly run: (url: string, seed: number, mapPath?: PathMapper) => Promise<LoadResult>;
  /** What peak RSS is compared with when limited. */
  readonly limitBytes: number | undefined;
}

const NO_LIMIT = ["--memory-limit", "64GiB"];

async function main(): Promise<void> {
  const { values } = parseArgs({
    strict: false,
    options: {
      quick: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
      render: { type: "string" },
      out: { type: "string", default: "memory" },
      only: { type: "string", default: "mixed16,mixed64,herd,distinct" },
      configs: { type: "string", default: "before,shipped,shippedGlibc" },
      "duration-s": { type: "string", default: "45" },
      rounds: { type: "string", default: "1" },
    },
  });
  if (values.help === true) return; // bench/run.ts printed the help
  if (typeof values.render === "string") {
    writeReports(
      JSON.parse(readFileSync(values.render, "utf8")) as Record<string, unknown>[],
      String(values.out),
      false,
    );
    return;
  }
  installCleanup(() => undefined);
  const isQuick = values.quick === true;
  const durationMs = (isQuick ? 10 : Number(values["duration-s"])) * 1000;
  const jpegs = await loadJpegs();
  const origin = await startManyOriginalsOrigin(jpegs);
  const scenarios: Scenario[] = [
    {
      key: "mixed16",
      name: "mixed, 16 clients",
      limitedArgs: ["--memory-limit", "512MiB"],
      unlimitedArgs: ["--cache-max-bytes", "64MiB", ...NO_LIMIT],
      run: (url, seed, mapPath) =>
        runMixedMemoryLoad({ url, clients: 16, durationMs, seed, ...(mapPath ? { mapPath } : {}) }),
      limitBytes: 512 * MiB,
    },
    {
      key: "mixed64",
      name: "mixed, 64 clients",
      limitedArgs: ["--memory-limit", "512MiB"],
      unlimitedArgs: ["--cache-max-bytes", "64MiB", ...NO_LIMIT],
      run: (url, seed, mapPath) =>
        runMixedMemoryLoad({ url, clients: 64, durationMs, seed, ...(mapPath ? { mapPath } : {}) }),
      limitBytes: 512 * MiB,
    },
    {
      key: "herd",
      name: "AVIF herd, 200 + 12 cold",
      limitedArgs: ["--memory-limit", "384MiB"],
      unlimitedArgs: ["--cache-max-bytes", "384MiB", ...NO_LIMIT],
      run: (url, seed, mapPath) =>
        runAvifHerd({ url, clients: 200, others: 12, firstOriginal: seed * 1000, ...(mapPath ? { mapPath } : {}) }),
      limitBytes: 384 * MiB,
    },
    {
      key: "distinct",
      name: "120 distinct originals, 20 MiB cache",
      limitedArgs: ["--cache-max-bytes", "20MiB", "--memory-limit", "512MiB"],
      unlimitedArgs: ["--cache-max-bytes", "20MiB", ...NO_LIMIT],
      run: (url, seed, mapPath) =>
        runDistinctOriginals({
          url,
          count: 120,
          concurrency: 8,
          firstOriginal: seed * 1000,
          ...(mapPath ? { mapPath } : {}),
        }),
      limitBytes: undefined,
    },
  ];
  const wanted = new Set(String(values.only).split(","));
  const chosen = scenarios.filter((scenario) => wanted.has(scenario.key));
  const configNames = isQuick ? "before,shipped" : String(values.configs);
  const configs = configNames.split(",").map((name) => {
    const config = CONFIGS[name];
    if (!config) throw new Error(`unknown config ${name}; known: ${Object.keys(CONFIGS).join(", ")}`);
    return config;
  });
  const rows: Record<string, unknown>[] = [];
  for (let round = 0; round < Number(values.rounds ?? 1); round++) {
    for (const scenario of chosen) {
      for (const config of configs) {
        const row = await runOne(origin.url, scenario, config, round + 1);
        rows.push(row);
        console.log(JSON.stringify(row));
      }
    }
  }
  await origin.close();
  writeReports(rows, String(values.out), true);
  await stopAllChildren();
}

/** bench/results/<name>.{json,md,svg}; the JSON only when the rows are new. */
function writeReports(rows: readonly Record<string, unknown>[], name: string, isNew: boolean): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  if (isNew) writeFileSync(join(RESULTS_DIR, `${name}.json`), `${JSON.stringify(rows, null, 2)}\n`);
  writeFileSync(join(RESULTS_DIR, `${name}.md`), formatMarkdown(rows));
  writeFileSync(join(RESULTS_DIR, `${name}.svg`), renderBarChart(peakChart(rows)));
  console.log(formatMarkdown(rows));
}

interface Server {
  readonly url: string;
  readonly pid: number;
  readonly mapPath: PathMapper | undefined;
  /** /api/stats (Imagika only). */
  stats(): Promise<{ cacheBytes: number; memory: unknown }>;
  stop(): Promise<void>;
}

async function startServer(originUrl: string, scenario: Scenario, config: MemoryConfig): Promise<Server> {
  const port = await findFreePort();
  const placement = { cpus: undefined, niceness: 0 };
  const stderrPath = join(RESULTS_DIR, "memory-stderr.log");
  if (config.system === "ipx") {
    ensureIpx();
    const ipx = await startIpx({ originUrl, port, stderrPath, placement });
    return {
      url: ipx.url,
      pid: ipx.pid,
      mapPath: ipxPathMapper(originUrl),
      stats: () => Promise.resolve({ cacheBytes: 0, memory: undefined }),
      stop: () => ipx.stop(),
    };
  }
  const proxy = await startImagika({
    originUrl,
    port,
    logPath: "/dev/null",
    stderrPath,
    placement,
    extraArgs: [...(config.isLimited ? scenario.limitedArgs : scenario.unlimitedArgs), "--origin-concurrency", "8"],
    logLevel: "warn",
    env: { ...process.env, ...config.env },
    ...(config.nodeFlags ? { nodeFlags: config.nodeFlags } : {}),
  });
  return {
    url: proxy.url,
    pid: proxy.pid,
    mapPath: undefined,
    stats: async () => {
      const body = (await (await fetch(`${proxy.url}/api/stats`)).json()) as {
        cache: { bytes: number };
        memory: unknown;
      };
      return { cacheBytes: body.cache.bytes, memory: body.memory };
    },
    stop: () => proxy.stop(),
  };
}

async function runOne(
  originUrl: string,
  scenario: Scenario,
  config: MemoryConfig,
  seed: number,
): Promise<Record<string, unknown>> {
  const server = await startServer(originUrl, scenario, config);
  await sleep(1000);
  const startRss = readStatusBytes(server.pid, "VmRSS");
  const sampler = new RssSampler(server.pid);
  const result = await scenario.run(server.url, seed, server.mapPath);
  const peak = sampler.peakBytes();
  const atEnd = sampler.sample();
  await sleep(15_000);
  const after = sampler.sample();
  sampler.stop();
  const stats = await server.stats();
  await server.stop();
  const ok = result.byStatus["200"] ?? 0;
  return {
    scenario: scenario.name,
    config: config.name,
    round: seed,
    startMiB: round1(startRss / MiB),
    peakMiB: round1(peak / MiB),
    endMiB: round1(atEnd / MiB),
    after15sMiB: round1(after / MiB),
    cacheMiB: round1(stats.cacheBytes / MiB),
    limitMiB: config.isLimited && scenario.limitBytes !== undefined ? scenario.limitBytes / MiB : null,
    requests: result.requests,
    reqPerSecond: round1(result.requests / (result.durationMs / 1000)),
    okShare: round1((100 * ok) / result.requests),
    byStatus: result.byStatus,
    shedWithRetryAfter: result.shedWithRetryAfter,
    memory: stats.memory,
  };
}

/** Peak RSS over the scenario's limit, for the README: every configuration, against the limit the shipped one keeps. */
function peakChart(rows: readonly Record<string, unknown>[]): Chart {
  const limits: Record<string, number> = {
    "mixed, 16 clients": 512,
    "mixed, 64 clients": 512,
    "AVIF herd, 200 + 12 cold": 384,
  };
  const bars = rows
    .filter((r) => limits[String(r.scenario)] !== undefined)
    .map((r) => {
      const limit = limits[String(r.scenario)] ?? 1;
      return {
        label: `${shortScenario(String(r.scenario))}: ${shortConfig(String(r.config))}`,
        value: Number(r.peakMiB) / limit,
        detail: `${Math.round(Number(r.peakMiB))} of ${limit} MiB, ${String(r.okShare)}% 200`,
      };
    });
  return {
    title: "Peak RSS / --memory-limit under load (lower is better; at most 1)",
    subtitle: "before: glibc, no process budget (the same load, against the same figure); shipped: jemalloc + budget",
    bars,
    target: { value: 1, label: "limit" },
    isHigherBetter: false,
  };
}

function shortScenario(name: string): string {
  return name.replace(", 200 + 12 cold", "").replace(" clients", "").replace(",", "");
}

function shortConfig(name: string): string {
  if (name.startsWith("before")) return "before";
  if (name.includes("no limit")) return "jemalloc, no budget";
  if (name.includes("without libjemalloc2")) return "tuned glibc";
  if (name.startsWith("as shipped")) return "shipped";
  return name.slice(0, 24);
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

function formatMarkdown(rows: readonly Record<string, unknown>[]): string {
  const header =
    "| scenario | config | start MiB | peak MiB | limit MiB | peak − start | 15 s after MiB | after − start − cache | cache MiB | req/s | 200 % | statuses |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  return (
    header +
    rows
      .map(
        (r) =>
          `| ${String(r.scenario)} | ${String(r.config)} | ${String(r.startMiB)} | ${String(r.peakMiB)} | ${typeof r.limitMiB === "number" ? r.limitMiB : "-"} | ${round1(Number(r.peakMiB) - Number(r.startMiB))} | ${String(r.after15sMiB)} | ${round1(Number(r.after15sMiB) - Number(r.startMiB) - Number(r.cacheMiB))} | ${String(r.cacheMiB)} | ${String(r.reqPerSecond)} | ${String(r.okShare)} | ${JSON.stringify(r.byStatus)} |`,
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
