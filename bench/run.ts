/**
 * `npm run bench`: Imagika next to the servers users would pick instead (issue 7), on one machine, over loopback.
 * 1-2 cached hits (small file, 4K original) vs nginx proxy_cache, Varnish, nginx static (and ipx re-transforming);
 * 3 cold 4K -> 1280 WebP vs ipx, nginx image_filter, vipsthumbnail and bare sharp; 4 a herd of concurrent requests for
 * one new variant; 5 a Zipf workload with the cache at 10% of the working set vs an ideal LRU; 6 overload past
 * --transform-queue; 7 (issue 8) --workers 2 against 1. Flags: see HELP. Results: bench/results/latest.{json,md} and
 * bench/results/*.svg; raw wrk output under bench/results/raw/ (git-ignored). See docs/benchmarks.md.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { mkdtemp, readFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createClient } from "redis";
import { generateSamples } from "../origin-server/samples.ts";
import { startOriginServer } from "../origin-server/server.ts";
import type { RunningOrigin } from "../origin-server/server.ts";
import { checkCacheHit, measureWrkRun } from "./lib/cached.ts";
import type { CachedServer } from "./lib/cached.ts";
import { renderBarChart } from "./lib/charts.ts";
import type { Chart } from "./lib/charts.ts";
import { installCleanup, stopAllChildren } from "./lib/children.ts";
import { timedGet } from "./lib/client.ts";
import { runColdSequential, runHerd } from "./lib/cold.ts";
import type { ColdRow, HerdRow, TransformServer } from "./lib/cold.ts";
import { writeFixtures } from "./lib/fixtures.ts";
import type { Fixture } from "./lib/fixtures.ts";
import { startImagika } from "./lib/imagika.ts";
import type { RunningImagika } from "./lib/imagika.ts";
import { ensureIpx, IPX_VERSION, ipxSharpVersion, PEERS_DIR, startIpx } from "./lib/ipx.ts";
import type { RunningIpx } from "./lib/ipx.ts";
import {
  chargedBytes,
  createRandom,
  readStats,
  replayTrace,
  simulateLru,
  simulateLruOnEvents,
  zipfTrace,
} from "./lib/mixed.ts";
import type { Window } from "./lib/mixed.ts";
import { startNginx } from "./lib/nginx.ts";
import { startNodeBare } from "./lib/node-bare.ts";
import type { RunningNginx } from "./lib/nginx.ts";
import type { Placement } from "./lib/placement.ts";
import { readPeakRssBytes, sumCpuSeconds, waitForIdle } from "./lib/proc.ts";
import {
  compare,
  formatConsoleTables,
  formatMarkdownTables,
  formatTable,
  isContended,
  summarize,
  summaryRow,
  SUMMARY_HEADER,
} from "./lib/report.ts";
import type { Comparison, Measurement, Summary, SystemName, Target } from "./lib/report.ts";
import { canPin, describeEnvironment, ensureTools, findFreePort, gitRevision } from "./lib/system.ts";
import type { Environment } from "./lib/system.ts";
import { startVarnish } from "./lib/varnish.ts";
import type { RunningVarnish } from "./lib/varnish.ts";

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(BENCH_DIR, "..");
const RESULTS_DIR = join(BENCH_DIR, "results");

/** Issue 2's targets: the proxy's cache-hit path against nginx proxy_cache on the same core. */
const TARGETS: readonly Omit<Target, "label">[] = [
  { fixture: "small", minRequestsRatio: 0.65, maxCpuMicrosPerRequest: 45 },
  { fixture: "4k", minRequestsRatio: 0.9, maxCpuMicrosPerRequest: 700 },
];

/** Servers on core 0; wrk, this runner and the origin on core 1, so load generation never steals the server's core. */
const SERVER_CPUS = "0";
const LOAD_CPUS = "1";
/** Mixed workload: widths x formats per original (issue 7: 5 widths x 2 formats). */
const MIXED_WIDTHS = [320, 640, 960, 1280, 1920] as const;
const MIXED_FORMATS = ["webp", "jpeg"] as const;
const MIXED_SEED = 7;
/**
 * One client: the trace is replayed in its own order, so the hit ratio compares with the ideal LRU on the same
 * sequence. With more clients, requests that arrive while their variant is being made collapse onto that transform
 * (neither a hit nor a miss of the LRU): the herd, overload and --workers scenarios measure concurrency.
 */
const MIXED_CLIENTS = 1;
const MIXED_CACHE_SHARE = 0.1;
/** The mixed scenario's --memory-limit: room enough that the budget never trims its small cache. */
const MIXED_MEMORY_LIMIT_BYTES = 2 * 1024 ** 3;
const OVERLOAD_QUEUE = 8;
const OVERLOAD_CACHE_BYTES = 64 * 1024 ** 2;
/**
 * Cold requests each server gets first, on originals nobody measures: a server that has been up a while runs its
 * miss path as compiled code. With one warm-up request, receiving the 3 MB original alone cost Imagika 7-32 ms of CPU
 * (undici's body path still interpreted) against 4-5 ms once warm.
 */
const COLD_WARMUP_REQUESTS = 4;
/**
 * Herds per system, each on a new variant; the report takes the median wall time. ipx runs one: it transforms every
 * request (~27 s per herd of 200), and its herd is a comparison, not a target. --quick runs one each (2-minute bound).
 */
const herdRunsOf = (system: string, isQuick: boolean): number => (system === "ipx" || isQuick ? 1 : 3);
const herdFile = (system: string, run: number): string => `herd-${system.replace(/\W+/g, "-")}-${run}.jpg`;

/** The variant every cold/herd request asks for. */
const COLD_QUERY = "w=1280&f=webp";

const CACHED_SYSTEMS: readonly SystemName[] = ["imagika", "nginx", "varnish", "nginx-static", "node-bare"];
/** The bare Node server is the Node floor for small hits; on the 4K file every system is wrk-bound anyway. */
const cachedSystemsFor = (fixture: Fixture): readonly SystemName[] =>
  CACHED_SYSTEMS.filter((name) => name !== "node-bare" || fixture.id === "small");
const SYSTEM_LABELS: Record<SystemName, string> = {
  imagika: "Imagika",
  "imagika-2w": "Imagika --workers 2",
  nginx: "nginx proxy_cache",
  varnish: "Varnish",
  "nginx-static": "nginx static",
  "node-bare": "bare Node http",
  ipx: "ipx",
};

interface Settings {
  readonly isQuick: boolean;
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  readonly rounds: number;
  readonly threads: number;
  readonly connections: number;
  readonly isPinned: boolean;
  /** nice value for the servers and wrk: 0, or -10 with --nice. */
  readonly niceness: number;
  /** wrk seconds for ipx's repeated variant (it re-transforms every request: ~8 req/s on one core). */
  readonly ipxSeconds: number;
  readonly coldRounds: number;
  readonly herdSize: number;
  /** Sample originals in the mixed workload (12 = the whole sample library). */
  readonly mixedOriginals: number;
  readonly mixedRequests: number;
  readonly mixedMaxSeconds: number;
  readonly mixedWindowSeconds: number;
  readonly overloadConcurrency: number;
  /** Distinct cold variants per --workers run (each asked for 4 times, concurrently). */
  readonly workersColdVariants: number;
}

const HELP = `Usage: npm run bench -- [options]

Imagika vs nginx proxy_cache, Varnish, nginx static, nginx image_filter, ipx, vipsthumbnail and bare sharp on
loopback (wrk, interleaved rounds, medians, CPU µs per request), plus herd, mixed Zipf, overload and --workers 2.

  --quick            everything, smaller (2 s runs, 1 round, fewer requests): under 2 minutes
  --duration <s>     seconds per measured wrk run (default 10; quick 2)
  --connections <n>  wrk connections (default 64)
  --threads <n>      wrk threads (default 2)
  --rounds <n>       measured runs per system and file (default 3; quick 1)
  --render <json>    rewrite latest.{json,md} and the charts from a saved bench/results/raw/<stamp>.json (no load)
  --nice             run the servers and wrk at nice -10 (root), ahead of other work on a shared machine
  -h, --help         this text`;

function positiveInt(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer >= ${min}, got '${value}'`);
  return n;
}

function parseSettings(argv: readonly string[]): Settings | undefined {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: "boolean", default: false },
      duration: { type: "string" },
      connections: { type: "string" },
      threads: { type: "string" },
      rounds: { type: "string" },
      render: { type: "string" },
      nice: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const isQuick = values.quick;
  const threads = positiveInt("threads", values.threads, 2);
  const connections = positiveInt("connections", values.connections, 64);
  if (connections < threads) throw new Error("--connections must be at least --threads (wrk needs one per thread)");
  return {
    isQuick,
    durationSeconds: positiveInt("duration", values.duration, isQuick ? 2 : 10),
    warmupSeconds: isQuick ? 1 : 3,
    rounds: positiveInt("rounds", values.rounds, isQuick ? 1 : 3),
    threads,
    connections,
    isPinned: canPin(),
    niceness: values.nice ? -10 : 0,
    ipxSeconds: isQuick ? 2 : 5,
    coldRounds: isQuick ? 3 : 9,
    herdSize: isQuick ? 20 : 200,
    mixedOriginals: isQuick ? 2 : 12,
    mixedRequests: isQuick ? 250 : 1000,
    mixedMaxSeconds: isQuick ? 4 : 150,
    mixedWindowSeconds: 2,
    overloadConcurrency: isQuick ? 24 : 64,
    workersColdVariants: isQuick ? 4 : 24,
  };
}

const pct = (n: number): string => `${(n * 100).toFixed(0)}%`;
const int = (n: number): string => Math.round(n).toLocaleString("en-US");
const mib = (bytes: number): string => (bytes / 1024 ** 2).toFixed(0);
const mib1 = (bytes: number): string => (bytes / 1024 ** 2).toFixed(1);

function describePinning(settings: Settings): string {
  return settings.isPinned
    ? `servers (Imagika, nginx, Varnish, ipx, vipsthumbnail) pinned to core ${SERVER_CPUS} with taskset; wrk, this runner (clients, bare sharp) and the origin on core ${LOAD_CPUS}; --workers runs: the proxy on both cores`
    : "no pinning (taskset missing or fewer than 2 cores): servers and load share the cores";
}

/** Sample originals, generated once per count and kept under bench/.peers (git-ignored): 12 take ~7 s to paint. */
async function sampleLibrary(count: number): Promise<{ dir: string; files: string[] }> {
  const dir = join(PEERS_DIR, `samples-42-${count}`);
  const marker = join(dir, "files.json");
  if (existsSync(marker)) return { dir, files: JSON.parse(readFileSync(marker, "utf8")) as string[] };
  const { files } = await generateSamples({ dir, count, seed: 42 });
  writeFileSync(marker, JSON.stringify(files));
  return { dir, files };
}

async function isRedisReachable(): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = connect(6379, "127.0.0.1");
    const done = (ok: boolean): void => {
      socket.destroy();
      resolvePromise(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** Deletes the keys a --workers run left in the shared Redis (its own prefix only). */
async function deleteRedisKeys(prefix: string): Promise<number> {
  const client = createClient({ url: "redis://127.0.0.1:6379" });
  await client.connect();
  let deleted = 0;
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
      if (keys.length > 0) deleted += await client.del(keys);
    }
  } finally {
    await client.quit();
  }
  return deleted;
}

// ---------------------------------------------------------------------------------------------------------------
// Result shapes (the JSON file; --render rebuilds the Markdown and the charts from it)

interface CachedResult {
  readonly fixture: string;
  readonly label: string;
  readonly summaries: readonly Summary[];
}

interface MixedResult {
  readonly originals: number;
  readonly variants: number;
  readonly traceLength: number;
  readonly zipfExponent: number;
  readonly clients: number;
  readonly workingSetBytes: number;
  readonly cacheBudgetBytes: number;
  readonly issued: number;
  readonly completed: number;
  readonly seconds: number;
  readonly errors: number;
  readonly hitRatio: number;
  /** Hits plus collapsed misses (waited for another request's transform: no origin fetch, no transform). */
  readonly hitOrCollapsedRatio: number;
  readonly lruHitRatio: number;
  /** The same LRU driven by the replay's real order (lookups at start, inserts when a transform finished). */
  readonly concurrentLruHitRatio: number;
  readonly originFetches: number;
  readonly originOffload: number;
  readonly transforms: number;
  readonly windows: readonly Window[];
  readonly peakRssBytes: number;
}

interface OverloadResult {
  readonly concurrency: number;
  readonly transformQueue: number;
  readonly transformConcurrency: string;
  readonly wallMs: number;
  readonly statuses: Record<string, number>;
  readonly served: number;
  readonly shed: number;
  readonly cacheBudgetBytes: number;
  readonly peakRssBytes: number;
  readonly rssBeforeBytes: number;
}

interface WorkersColdResult {
  readonly workers: number;
  readonly requests: number;
  readonly distinctVariants: number;
  readonly distinctOriginals: number;
  readonly wallMs: number;
  readonly requestsPerSecond: number;
  readonly errors: number;
  readonly originRequests: number;
  readonly serverCpuSeconds: number;
  readonly peakRssBytes: number;
}

interface WorkersResult {
  readonly placement: string;
  readonly sharedTiers: string;
  readonly cached: readonly Summary[];
  readonly cold: readonly WorkersColdResult[];
}

interface Results {
  readonly settings: Settings;
  readonly environment: Environment;
  readonly versions: Record<string, string>;
  readonly pinning: string;
  readonly revision: string;
  readonly fixtures: readonly Fixture[];
  readonly comparisons: readonly Comparison[];
  readonly cached: readonly CachedResult[];
  readonly measurements: readonly Measurement[];
  readonly originRequestsDuringRuns: number;
  readonly cold: readonly ColdRow[];
  readonly herd: readonly HerdRow[];
  readonly mixed: MixedResult;
  readonly overload: OverloadResult;
  readonly workers: WorkersResult;
  readonly proxyCommand: string;
  readonly proxyLog: string;
  readonly configs: Record<string, string>;
  readonly wrkOutputs?: readonly string[];
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const renderAt = process.argv.indexOf("--render");
  if (renderAt >= 0) {
    const path = process.argv[renderAt + 1];
    if (path === undefined) throw new Error("--render: give a raw result file");
    const saved = JSON.parse(await readFile(path, "utf8")) as Results & { generatedAt: string };
    writeOutputs(saved.generatedAt, saved, false);
    return;
  }
  const settings = parseSettings(process.argv.slice(2));
  if (!settings) return void console.log(HELP);
  const benchStarted = performance.now();
  ensureTools();
  ensureIpx();
  if (settings.niceness < 0 && process.getuid?.() !== 0) throw new Error("--nice needs root (a negative nice value)");
  if (settings.isPinned) spawnSync("taskset", ["-a", "-p", "-c", LOAD_CPUS, String(process.pid)], { stdio: "ignore" });
  const environment = describeEnvironment();
  const versions = { ipx: IPX_VERSION, "ipx's sharp": ipxSharpVersion(), varnish: environment.varnish };
  const pinning = `${describePinning(settings)}${settings.niceness === 0 ? "" : `; servers and wrk at nice ${settings.niceness}`}`;
  const revision = gitRevision();
  const dirtySources = spawnSync("git", ["status", "--porcelain", "--", "src", "origin-server"], {
    cwd: REPO_ROOT,
    encoding: "utf8",
  }).stdout.trim();
  const elapsed = (): string => `${((performance.now() - benchStarted) / 1000).toFixed(0).padStart(4)} s`;
  const progress = (line: string): void => console.log(`[${elapsed()}] ${line}`);

  console.log(
    `Imagika benchmark${settings.isQuick ? " (quick)" : ""} at ${revision}${dirtySources ? " + uncommitted changes in src/" : ""}`,
  );
  console.log(
    `  Node ${environment.node} | ${environment.cpuModel} | ${environment.cores} cores | Linux ${environment.kernel} | load average ${environment.loadAverage1m.toFixed(2)}`,
  );
  console.log(
    `  nginx ${environment.nginx} | ${environment.varnish} | ${environment.vips} | ipx ${IPX_VERSION} (sharp ${versions["ipx's sharp"]}) | ${environment.wrk}`,
  );
  console.log(`  pinning: ${pinning}`);
  console.log(
    `  wrk -t${settings.threads} -c${settings.connections} -d${settings.durationSeconds}s --latency; ${settings.rounds} round(s) per system and file, interleaved; ${settings.warmupSeconds} s warm-up each`,
  );

  const tempDir = await mkdtemp(join(tmpdir(), "imagika-bench-"));
  installCleanup(() => rmSync(tempDir, { recursive: true, force: true }));
  const originDir = join(tempDir, "origin");
  mkdirSync(originDir);
  const proxyLogPath = join(tempDir, "imagika.log");
  const serverPlacement: Placement = { cpus: settings.isPinned ? SERVER_CPUS : undefined, niceness: settings.niceness };
  const loadPlacement: Placement = { cpus: settings.isPinned ? LOAD_CPUS : undefined, niceness: settings.niceness };
  const bothCores: Placement = { cpus: settings.isPinned ? "0,1" : undefined, niceness: settings.niceness };
  const serverCore = settings.isPinned ? Number(SERVER_CPUS) : undefined;

  let origin: RunningOrigin | undefined;
  const stoppers: (() => Promise<void>)[] = [];
  const redisPrefixes: string[] = [];
  try {
    const fixtures = await writeFixtures(originDir);
    for (const f of fixtures) console.log(`  file ${f.fileName}: ${f.label}, ${f.bytes.toLocaleString("en-US")} bytes`);
    const library = await sampleLibrary(settings.mixedOriginals);
    for (const file of library.files) copyFileSync(join(library.dir, file), join(originDir, file));
    // Cold and herd requests each get a never-seen copy of the first sample (4K landscape JPEG, q90, ~3.2 MB).
    const coldSource = join(originDir, library.files[0] ?? "landscape-01.jpg");
    const coldFile = (system: string, round: number): string => `cold-${system.replace(/\W+/g, "-")}-${round}.jpg`;
    const coldSystems = ["imagika", "ipx", "nginx image_filter"];
    for (const system of coldSystems) {
      for (let round = -COLD_WARMUP_REQUESTS; round < settings.coldRounds; round++)
        copyFileSync(coldSource, join(originDir, coldFile(system, round)));
      for (let run = 0; run < herdRunsOf(system, settings.isQuick); run++)
        copyFileSync(coldSource, join(originDir, herdFile(system, run)));
      copyFileSync(coldSource, join(originDir, `herd-warm-${system.replace(/\W+/g, "-")}.jpg`));
    }
    origin = await startOriginServer({
      dir: originDir,
      port: 0,
      host: "127.0.0.1",
      latencyMs: 0,
      bandwidthBytesPerSecond: 0,
    });
    const originUrl = origin.url;
    const originCount = origin.requestCount.bind(origin);

    const imagika: RunningImagika = await startImagika({
      originUrl,
      port: await findFreePort(),
      logPath: proxyLogPath,
      stderrPath: join(tempDir, "imagika.stderr.log"),
      placement: serverPlacement,
    });
    stoppers.push(() => imagika.stop());
    const nginx: RunningNginx = await startNginx({
      originUrl,
      port: await findFreePort(),
      dir: join(tempDir, "nginx"),
      placement: serverPlacement,
    });
    stoppers.push(() => nginx.stop());
    const nginxStatic: RunningNginx = await startNginx({
      role: "static",
      originUrl,
      originDir,
      port: await findFreePort(),
      dir: join(tempDir, "nginx-static"),
      placement: serverPlacement,
    });
    stoppers.push(() => nginxStatic.stop());
    const imageFilter: RunningNginx = await startNginx({
      role: "image-filter",
      originUrl,
      resizePort: await findFreePort(),
      resizeWidth: 1280,
      port: await findFreePort(),
      dir: join(tempDir, "nginx-image-filter"),
      placement: serverPlacement,
    });
    stoppers.push(() => imageFilter.stop());
    const varnish: RunningVarnish = await startVarnish({
      originUrl,
      port: await findFreePort(),
      dir: join(tempDir, "varnish"),
      readyPath: `/${fixtures[0]?.fileName ?? ""}`,
      placement: serverPlacement,
    });
    stoppers.push(() => varnish.stop());
    const ipx: RunningIpx = await startIpx({
      originUrl,
      port: await findFreePort(),
      stderrPath: join(tempDir, "ipx.stderr.log"),
      placement: serverPlacement,
    });
    stoppers.push(() => ipx.stop());
    const nodeBare = await startNodeBare({
      dir: originDir,
      files: fixtures.map((f) => f.fileName),
      port: await findFreePort(),
      stderrPath: join(tempDir, "node-bare.stderr.log"),
      placement: serverPlacement,
    });
    stoppers.push(() => nodeBare.stop());
    progress(
      `origin ${originUrl} | imagika pid ${imagika.pid} | nginx proxy_cache, static, image_filter | varnish pid ${varnish.managerPid} | ipx pid ${ipx.pid}`,
    );

    const xCacheHit = (res: Response): boolean => res.headers.get("x-cache") === "HIT";
    const servers: Record<SystemName, CachedServer> = {
      imagika: {
        name: "imagika",
        urlFor: (file) => `${imagika.url}/img/${file}`,
        cpuPids: () => [imagika.pid],
        rssPids: () => [imagika.pid],
        isHit: xCacheHit,
      },
      "imagika-2w": {
        name: "imagika-2w",
        urlFor: () => "",
        cpuPids: () => [],
        rssPids: () => [],
        isHit: xCacheHit,
      },
      nginx: {
        name: "nginx",
        urlFor: (file) => `${nginx.url}/img/${file}`,
        cpuPids: () => nginx.allPids,
        rssPids: () => [nginx.workerPid],
        isHit: xCacheHit,
      },
      "nginx-static": {
        name: "nginx-static",
        urlFor: (file) => `${nginxStatic.url}/img/${file}`,
        cpuPids: () => nginxStatic.allPids,
        rssPids: () => [nginxStatic.workerPid],
        isHit: () => true,
      },
      varnish: {
        name: "varnish",
        urlFor: (file) => `${varnish.url}/${file}`,
        cpuPids: () => varnish.allPids,
        rssPids: () => [varnish.cachePid],
        // X-Varnish carries two transaction ids on a hit (this request's and the one that filled the cache).
        isHit: (res) => (res.headers.get("x-varnish") ?? "").trim().split(/\s+/).length === 2,
      },
      "node-bare": {
        name: "node-bare",
        urlFor: (file) => `${nodeBare.url}/img/${file}`,
        cpuPids: () => [nodeBare.pid],
        rssPids: () => [nodeBare.pid],
        isHit: () => true,
      },
      ipx: {
        name: "ipx",
        urlFor: (file) => ipx.urlFor(file, "w_1280,f_webp,q_80"),
        cpuPids: () => [ipx.pid],
        rssPids: () => [ipx.pid],
        isHit: () => false,
      },
    };
    const allServerPids = (): number[] => [
      ...imagika.pids(),
      ...nginx.allPids,
      ...nginxStatic.allPids,
      ...imageFilter.allPids,
      ...varnish.allPids,
      ipx.pid,
      nodeBare.pid,
    ];

    // ---- Scenarios 1-2: cached hits ----
    for (const f of fixtures)
      for (const name of cachedSystemsFor(f)) await checkCacheHit(servers[name], f.fileName, f.bytes);
    const originRequestsBefore = originCount();
    const measurements: Measurement[] = [];
    const wrkRuns = fixtures.reduce((n, f) => n + cachedSystemsFor(f).length * (settings.rounds + 1), 1);
    let step = 0;
    const wrkOutputs: string[] = [];
    const runCached = async (name: SystemName, fixture: Fixture, round: number, seconds?: number) => {
      step++;
      const isWarmup = round === 0;
      const m = await measureWrkRun(servers[name], {
        fixture: fixture.id,
        fileName: name === "ipx" ? "original-4k.jpg" : fixture.fileName,
        round,
        durationSeconds: seconds ?? (isWarmup ? settings.warmupSeconds : settings.durationSeconds),
        threads: name === "ipx" ? 1 : settings.threads,
        // ipx: 4 connections, else queued requests wait past wrk's 2 s timeout and count as errors.
        connections: name === "ipx" ? 4 : settings.connections,
        loadPlacement,
        serverCore,
        idlePids: allServerPids(),
        idleSampleMs: settings.isQuick ? 250 : 500,
        outputs: wrkOutputs,
        label: `[${elapsed()}] [${String(step).padStart(2)}/${wrkRuns}] cached ${fixture.id.padEnd(5)} ${name.padEnd(12)} ${isWarmup ? "warm-up  " : `round ${round}/${settings.rounds}`}`,
      });
      if (!isWarmup) measurements.push(m);
      return m;
    };
    for (const fixture of fixtures) {
      const systems = cachedSystemsFor(fixture);
      for (const name of systems) await runCached(name, fixture, 0);
      for (let round = 1; round <= settings.rounds; round++) {
        // Rotate who goes first each round, so a drift in machine load does not always favour the same system.
        const order = systems.map((_, i) => systems[(i + round - 1) % systems.length]!);
        for (const name of order) await runCached(name, fixture, round);
      }
    }
    const originRequestsDuringRuns = originCount() - originRequestsBefore;
    // ipx on a repeated variant of the 4K original (1280 px WebP, ~100 KB): it keeps no result cache, so every
    // request is a transform. One short run; waitForIdle lets it finish what it queued before anything else runs.
    const smallFixture = fixtures.find((f) => f.id === "small") ?? fixtures[0]!; // writeFixtures returns two
    await runCached("ipx", smallFixture, 1, settings.ipxSeconds);
    await waitForIdle(allServerPids(), { timeoutMs: 60_000 });

    const cached: CachedResult[] = fixtures.map((f) => ({
      fixture: f.id,
      label: f.id === "small" ? "small (~100 KB)" : "4K original (~3 MB)",
      summaries: [...CACHED_SYSTEMS, "ipx" as const]
        .map((name) => measurements.filter((m) => m.fixture === f.id && m.system === name))
        .filter((runs) => runs.length > 0)
        .map(summarize),
    }));
    const comparisons: Comparison[] = TARGETS.map((target) => {
      const pick = (system: SystemName): Measurement[] =>
        measurements.filter((m) => m.fixture === target.fixture && m.system === system);
      return compare(summarize(pick("imagika")), summarize(pick("nginx")), {
        ...target,
        label: target.fixture === "small" ? "small (~100 KB)" : "4K original (~3 MB)",
      });
    });

    // ---- Scenario 3: cold transform, sequential ----
    const resizeCount = (): Promise<number> =>
      Promise.resolve(
        existsSync(imageFilter.resizeLogPath)
          ? readFileSync(imageFilter.resizeLogPath, "utf8").split("\n").filter(Boolean).length
          : 0,
      );
    const transformServers: TransformServer[] = [
      {
        name: "imagika",
        outputFormat: "webp",
        urlFor: (file) => `${imagika.url}/img/${file}?${COLD_QUERY}`,
        cpuPids: () => [imagika.pid],
        rssPid: imagika.pid,
        transformCount: async () => (await readStats(imagika.url)).transforms,
        warmUrl: `${imagika.url}/healthz`,
      },
      {
        name: "ipx",
        outputFormat: "webp",
        urlFor: (file) => ipx.urlFor(file, "w_1280,f_webp,q_80"),
        cpuPids: () => [ipx.pid],
        rssPid: ipx.pid,
        warmUrl: `${ipx.url}/healthz`,
      },
      {
        name: "nginx image_filter",
        outputFormat: "jpeg",
        urlFor: (file) => `${imageFilter.url}/img/${file}`,
        cpuPids: () => imageFilter.allPids,
        rssPid: imageFilter.workerPid,
        transformCount: resizeCount,
        warmUrl: `${imageFilter.url}/healthz`,
      },
    ];
    progress(`cold transform: ${settings.coldRounds} rounds, 4K JPEG -> 1280 px, one request at a time`);
    const cold = await runColdSequential({
      servers: transformServers,
      fileFor: coldFile,
      originalPath: coldSource,
      rounds: settings.coldRounds,
      warmupRequests: COLD_WARMUP_REQUESTS,
      serverPlacement,
      tempDir,
      progress,
    });
    for (const r of cold)
      progress(
        `  ${r.system.padEnd(22)} median ${r.medianMs.toFixed(0).padStart(5)} ms (${r.minMs.toFixed(0)}-${r.maxMs.toFixed(0)})${r.cpuMsPerRequest === undefined ? "" : `  server CPU ${r.cpuMsPerRequest.toFixed(0)} ms/req`}  ${r.outputFormat} ${int(r.outputBytes)} B  ${r.errors} errors`,
      );

    // ---- Scenario 4: herd ----
    const herd: HerdRow[] = [];
    for (const server of transformServers) {
      progress(`herd: ${settings.herdSize} concurrent requests for one new variant on ${server.name}`);
      const row = await runHerd(
        server,
        Array.from({ length: herdRunsOf(server.name, settings.isQuick) }, (_, run) => herdFile(server.name, run)),
        `herd-warm-${server.name.replace(/\W+/g, "-")}.jpg`,
        settings.herdSize,
        originCount,
        allServerPids,
      );
      herd.push(row);
      progress(
        `  ${server.name}: ${row.wallMs.toFixed(0)} ms wall (median of ${row.runs}: ${row.wallsMs.map((w) => w.toFixed(0)).join(", ")}), ${row.ok} ok, ${row.errors} errors, origin requests ${row.originRequests}, transforms ${row.transforms ?? "n/a"}, server CPU ${row.serverCpuSeconds.toFixed(2)} s, peak RSS ${mib(row.peakRssBytes)} MiB`,
      );
    }

    // ---- Scenario 5: mixed Zipf workload with the cache at 10% of the working set ----
    const mixedFiles = library.files.slice(0, settings.mixedOriginals);
    const variants = mixedFiles.flatMap((file) =>
      MIXED_WIDTHS.flatMap((w) => MIXED_FORMATS.map((f) => `/img/${file}?w=${w}&f=${f}`)),
    );
    progress(`mixed: sizing ${variants.length} variants (${mixedFiles.length} originals x 5 widths x 2 formats)`);
    const sizes = new Map<number, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: 2 }, async () => {
        while (next < variants.length) {
          const item = next++;
          const res = await fetch(`${imagika.url}${variants[item]}`);
          const body = await res.arrayBuffer();
          if (res.status !== 200) throw new Error(`mixed: ${variants[item]} answered ${res.status}`);
          sizes.set(item, chargedBytes(body.byteLength, variants[item] ?? ""));
        }
      }),
    );
    const workingSetBytes = [...sizes.values()].reduce((a, b) => a + b, 0);
    const budget = Math.round(workingSetBytes * MIXED_CACHE_SHARE);
    const mixedImagika = await startImagika({
      originUrl,
      port: await findFreePort(),
      logPath: join(tempDir, "imagika-mixed.log"),
      stderrPath: join(tempDir, "imagika-mixed.stderr.log"),
      placement: serverPlacement,
      // Originals share 0: the whole budget holds variants, as in the LRU it is compared with. A memory limit of its
      // own: this scenario measures the cache's policy, not the process budget. The limit derived from a 1 MiB cache
      // (285 MiB) sat below the RSS of this proxy (glibc, started without bin/imagika.js) after a few cold 4K
      // transforms, and the budget trimmed the cache to its floor (run 18: 0.0-0.2 MiB cached, 22% hits vs 41%).
      extraArgs: [
        "--cache-max-bytes",
        String(budget),
        "--cache-originals-share",
        "0",
        "--memory-limit",
        String(MIXED_MEMORY_LIMIT_BYTES),
      ],
    });
    stoppers.push(() => mixedImagika.stop());
    const trace = zipfTrace(variants.length, settings.mixedRequests, 1, MIXED_SEED);
    progress(
      `mixed: working set ${mib1(workingSetBytes)} MiB, cache ${mib1(budget)} MiB (${pct(MIXED_CACHE_SHARE)}); replaying ${trace.length} requests (Zipf s=1, seed ${MIXED_SEED}) with ${MIXED_CLIENTS} clients, at most ${settings.mixedMaxSeconds} s`,
    );
    const replay = await replayTrace({
      baseUrl: mixedImagika.url,
      trace,
      pathFor: (item) => variants[item] ?? "",
      clients: MIXED_CLIENTS,
      maxSeconds: settings.mixedMaxSeconds,
      windowSeconds: settings.mixedWindowSeconds,
      onWindow: (w, done) =>
        progress(
          `  mixed t=${w.endSeconds.toFixed(0)} s: ${done}/${trace.length} done, window hit ratio ${pct(w.hitRatio)}, origin offload ${pct(w.originOffload)}, cache ${mib1(w.cacheBytes)} MiB`,
        ),
    });
    const lru = simulateLru(trace.slice(0, replay.issued), sizes, budget);
    const answered = Math.max(1, replay.completed - replay.errors);
    const mixed: MixedResult = {
      originals: mixedFiles.length,
      variants: variants.length,
      traceLength: trace.length,
      zipfExponent: 1,
      clients: MIXED_CLIENTS,
      workingSetBytes,
      cacheBudgetBytes: budget,
      issued: replay.issued,
      completed: replay.completed,
      seconds: replay.seconds,
      errors: replay.errors,
      hitRatio: replay.hits / answered,
      hitOrCollapsedRatio: (replay.hits + replay.collapsed) / answered,
      lruHitRatio: lru.hitRatio,
      concurrentLruHitRatio: simulateLruOnEvents(replay.events, sizes, budget).hitRatio,
      originFetches: replay.originFetches,
      originOffload: 1 - replay.originFetches / answered,
      transforms: replay.transforms,
      windows: replay.windows,
      peakRssBytes: readPeakRssBytes(mixedImagika.pid),
    };
    progress(
      `mixed: ${replay.completed} requests in ${replay.seconds.toFixed(1)} s; hit ratio ${(mixed.hitRatio * 100).toFixed(1)}% (hit or collapsed ${(mixed.hitOrCollapsedRatio * 100).toFixed(1)}%) vs ideal LRU ${(lru.hitRatio * 100).toFixed(1)}%; origin offload ${pct(mixed.originOffload)}`,
    );
    await mixedImagika.stop();

    // ---- Scenario 6: overload past --transform-queue ----
    const overloadImagika = await startImagika({
      originUrl,
      port: await findFreePort(),
      logPath: join(tempDir, "imagika-overload.log"),
      stderrPath: join(tempDir, "imagika-overload.stderr.log"),
      placement: serverPlacement,
      extraArgs: ["--transform-queue", String(OVERLOAD_QUEUE), "--cache-max-bytes", String(OVERLOAD_CACHE_BYTES)],
    });
    stoppers.push(() => overloadImagika.stop());
    progress(
      `overload: ${settings.overloadConcurrency} concurrent distinct cold variants, --transform-queue ${OVERLOAD_QUEUE}, cache ${mib(OVERLOAD_CACHE_BYTES)} MiB`,
    );
    const rssBeforeBytes = readPeakRssBytes(overloadImagika.pid);
    await Promise.all(
      Array.from({ length: settings.overloadConcurrency }, () => timedGet(`${overloadImagika.url}/healthz`)),
    );
    const overloadStarted = performance.now();
    const overloadResults = await Promise.all(
      Array.from({ length: settings.overloadConcurrency }, (_, i) =>
        timedGet(`${overloadImagika.url}/img/${mixedFiles[i % mixedFiles.length]}?w=${600 + i}&f=webp`),
      ),
    );
    const statuses: Record<string, number> = {};
    for (const r of overloadResults) statuses[String(r.status)] = (statuses[String(r.status)] ?? 0) + 1;
    await waitForIdle([overloadImagika.pid]);
    const overload: OverloadResult = {
      concurrency: settings.overloadConcurrency,
      transformQueue: OVERLOAD_QUEUE,
      transformConcurrency: "default (number of cores: 2)",
      wallMs: performance.now() - overloadStarted,
      statuses,
      served: statuses["200"] ?? 0,
      shed: (statuses["503"] ?? 0) + (statuses["429"] ?? 0),
      cacheBudgetBytes: OVERLOAD_CACHE_BYTES,
      peakRssBytes: readPeakRssBytes(overloadImagika.pid),
      rssBeforeBytes,
    };
    progress(
      `overload: ${JSON.stringify(statuses)} in ${overload.wallMs.toFixed(0)} ms; peak RSS ${mib(overload.peakRssBytes)} MiB (at start ${mib(rssBeforeBytes)} MiB) for a ${mib(OVERLOAD_CACHE_BYTES)} MiB cache`,
    );
    await overloadImagika.stop();

    // ---- Scenario 7 (issue 8): --workers 2 against 1 ----
    const hasRedis = await isRedisReachable();
    const workerInstances: { workers: number; imagika: RunningImagika }[] = [];
    for (const workers of [1, 2]) {
      const prefix = `imagika-bench-${process.pid}-${workers}w:`;
      if (hasRedis) redisPrefixes.push(prefix);
      const instance = await startImagika({
        originUrl,
        port: await findFreePort(),
        logPath: join(tempDir, `imagika-${workers}w.log`),
        stderrPath: join(tempDir, `imagika-${workers}w.stderr.log`),
        placement: bothCores,
        extraArgs: [
          "--workers",
          String(workers),
          "--disk-cache-dir",
          join(tempDir, `disk-${workers}w`),
          ...(hasRedis ? ["--redis-url", "redis://127.0.0.1:6379", "--redis-key-prefix", prefix] : []),
        ],
      });
      stoppers.push(() => instance.stop());
      workerInstances.push({ workers, imagika: instance });
    }
    const workerServer = (workers: number): CachedServer => {
      const instance = workerInstances.find((w) => w.workers === workers)?.imagika;
      if (!instance) throw new Error(`no --workers ${workers} instance`);
      return {
        name: workers === 1 ? "imagika" : "imagika-2w",
        urlFor: (file) => `${instance.url}/img/${file}`,
        cpuPids: () => instance.pids(),
        rssPids: () => instance.pids(),
        isHit: xCacheHit,
      };
    };
    const workersCached: Measurement[] = [];
    // Each worker has its own memory tier: warm both until every worker has the file (round-robin accept).
    for (const workers of [1, 2]) {
      const server = workerServer(workers);
      for (let i = 0; i < 8; i++) await checkCacheHit(server, smallFixture.fileName, smallFixture.bytes);
    }
    for (let round = 0; round <= settings.rounds; round++) {
      const order = round % 2 === 0 ? [1, 2] : [2, 1];
      for (const workers of order) {
        const m = await measureWrkRun(workerServer(workers), {
          fixture: "small",
          fileName: smallFixture.fileName,
          round,
          durationSeconds: round === 0 ? settings.warmupSeconds : settings.durationSeconds,
          threads: settings.threads,
          connections: settings.connections,
          loadPlacement,
          serverCore: undefined,
          idlePids: [...allServerPids(), ...workerInstances.flatMap((w) => w.imagika.pids())],
          idleSampleMs: settings.isQuick ? 250 : 500,
          label: `[${elapsed()}] workers ${workers} cached small ${round === 0 ? "warm-up  " : `round ${round}/${settings.rounds}`}`,
        });
        if (round > 0) workersCached.push(m);
      }
    }
    const workersCold: WorkersColdResult[] = [];
    for (const { workers, imagika: instance } of workerInstances) {
      // Distinct variants (a width no other scenario used), each asked for 4 times in a shuffled order by 16 clients.
      const paths = Array.from(
        { length: settings.workersColdVariants },
        (_, i) => `/img/${mixedFiles[i % mixedFiles.length]}?w=${400 + workers * 100 + i}&f=webp`,
      );
      const requests = paths.flatMap((p) => [p, p, p, p]);
      const random = createRandom(MIXED_SEED + workers);
      for (let i = requests.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [requests[i], requests[j]] = [requests[j]!, requests[i]!]; // both in range
      }
      const pids = instance.pids();
      await waitForIdle([...allServerPids(), ...pids]);
      const originBefore = originCount();
      const cpuBefore = sumCpuSeconds(pids);
      let cursor = 0;
      let errors = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (cursor < requests.length) {
            const r = await timedGet(`${instance.url}${requests[cursor++]}`);
            if (r.status !== 200) errors++;
          }
        }),
      );
      const wallMs = performance.now() - started;
      workersCold.push({
        workers,
        requests: requests.length,
        distinctVariants: paths.length,
        distinctOriginals: Math.min(paths.length, mixedFiles.length),
        wallMs,
        requestsPerSecond: requests.length / (wallMs / 1000),
        errors,
        originRequests: originCount() - originBefore,
        serverCpuSeconds: sumCpuSeconds(pids) - cpuBefore,
        peakRssBytes: pids.reduce((sum, pid) => sum + readPeakRssBytes(pid), 0),
      });
      progress(
        `workers ${workers} cold set: ${requests.length} requests (${paths.length} variants x 4) in ${wallMs.toFixed(0)} ms, origin requests ${originCount() - originBefore}, ${errors} errors`,
      );
    }
    const workersResult: WorkersResult = {
      placement: "proxy on both cores (taskset -c 0,1), wrk and clients on core 1",
      sharedTiers: hasRedis
        ? "each instance: its own disk tier directory and Redis key prefix (127.0.0.1:6379), as in docs/deployment.md"
        : "Redis not reachable: disk tier only (coalescing is per worker)",
      cached: [1, 2].map((workers) =>
        summarize(workersCached.filter((m) => m.system === (workers === 1 ? "imagika" : "imagika-2w"))),
      ),
      cold: workersCold,
    };

    const proxyLogBytes = statSync(proxyLogPath).size;
    const results: Results = {
      settings,
      environment,
      versions,
      pinning,
      revision: dirtySources ? `${revision}+dirty` : revision,
      fixtures,
      comparisons,
      cached,
      measurements,
      originRequestsDuringRuns,
      cold,
      herd,
      mixed,
      overload,
      workers: workersResult,
      proxyCommand: imagika.command,
      proxyLog: `info, JSON lines to a file (${(proxyLogBytes / 1e6).toFixed(0)} MB written over the run)`,
      configs: {
        "nginx proxy_cache": await readFile(nginx.configPath, "utf8"),
        "nginx static": await readFile(nginxStatic.configPath, "utf8"),
        "nginx image_filter": await readFile(imageFilter.configPath, "utf8"),
        varnish: varnish.command,
      },
      wrkOutputs,
    };
    console.log("");
    console.log(formatReportBody(results, false));
    writeOutputs(new Date().toISOString(), results, true);
    progress("done");
  } finally {
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
    await origin?.close();
    await stopAllChildren(); // anything a failed start left behind
    for (const prefix of redisPrefixes) await deleteRedisKeys(prefix).catch(() => 0);
    rmSync(tempDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Targets (issue 7) and report

interface Verdict {
  readonly target: string;
  readonly measured: string;
  readonly isMet: boolean;
}

function findSummary(r: Results, fixture: string, system: SystemName): Summary | undefined {
  return r.cached.find((c) => c.fixture === fixture)?.summaries.find((s) => s.system === system);
}

function verdicts(r: Results): Verdict[] {
  const out: Verdict[] = [];
  const im = findSummary(r, "small", "imagika");
  const ng = findSummary(r, "small", "nginx");
  const va = findSummary(r, "small", "varnish");
  if (im && ng)
    out.push({
      target: "cached small: >= 0.65x nginx proxy_cache req/s",
      measured: `${(im.requestsPerSecond / ng.requestsPerSecond).toFixed(2)}x (${int(im.requestsPerSecond)} vs ${int(ng.requestsPerSecond)})`,
      isMet: im.requestsPerSecond / ng.requestsPerSecond >= 0.65,
    });
  if (im && va)
    out.push({
      target: "cached small: CPU/req <= Varnish's",
      measured: `${im.cpuMicrosPerRequest.toFixed(1)} vs ${va.cpuMicrosPerRequest.toFixed(1)} µs`,
      isMet: im.cpuMicrosPerRequest <= va.cpuMicrosPerRequest,
    });
  const coldOf = (name: string): ColdRow | undefined => r.cold.find((c) => c.system === name);
  const ci = coldOf("imagika");
  const cs = coldOf("bare sharp");
  const cx = coldOf("ipx");
  if (ci && cs)
    out.push({
      target: "cold transform: within 1.15x of bare sharp",
      measured: `${(ci.medianMs / cs.medianMs).toFixed(2)}x (${ci.medianMs.toFixed(0)} vs ${cs.medianMs.toFixed(0)} ms)`,
      isMet: ci.medianMs / cs.medianMs <= 1.15,
    });
  if (ci && cx)
    out.push({
      target: "cold transform: no slower than ipx",
      measured: `${ci.medianMs.toFixed(0)} vs ${cx.medianMs.toFixed(0)} ms`,
      isMet: ci.medianMs <= cx.medianMs,
    });
  const hi = r.herd.find((h) => h.system === "imagika");
  const hx = r.herd.find((h) => h.system === "ipx");
  if (hi)
    out.push({
      target: "herd: 1 origin fetch and 1 transform (ipx: one per request)",
      measured: `Imagika ${hi.originRequests} / ${hi.transforms ?? "?"}; ipx ${hx ? `${hx.originRequests} origin requests for ${hx.concurrency}` : "?"}`,
      isMet: hi.originRequests === 1 && hi.transforms === 1,
    });
  if (hi && ci)
    out.push({
      target: "herd (issue 4): wall time <= 1.3x one cold request",
      measured: `${(hi.wallMs / ci.medianMs).toFixed(2)}x (${hi.runs === 1 ? "one herd" : `median of ${hi.runs} herds`} ${hi.wallMs.toFixed(0)} vs ${ci.medianMs.toFixed(0)} ms, the cold median above)`,
      isMet: hi.wallMs / ci.medianMs <= 1.3,
    });
  const gap = r.mixed.hitRatio - r.mixed.lruHitRatio;
  out.push({
    target: "mixed: hit ratio within 2 points of an ideal LRU",
    measured: `${(r.mixed.hitRatio * 100).toFixed(1)}% vs ${(r.mixed.lruHitRatio * 100).toFixed(1)}% (${gap >= 0 ? "+" : ""}${(gap * 100).toFixed(1)} points, X-Cache: HIT over ${r.mixed.completed} requests)`,
    isMet: Math.abs(gap) <= 0.02,
  });
  return out;
}

function formatReportBody(r: Results, isMarkdown: boolean): string {
  const t = (header: readonly string[], rows: readonly string[][]): string => formatTable(header, rows, isMarkdown);
  const h = (title: string): string => (isMarkdown ? `## ${title}` : `== ${title}`);
  const cachedRows = r.cached.flatMap((c) => c.summaries.map((s) => summaryRow(c.label, s)));
  const ratioRows = r.cached.flatMap((c) => {
    const im = c.summaries.find((s) => s.system === "imagika");
    if (!im) return [];
    return c.summaries
      .filter((s) => s.system !== "imagika")
      .map((s) => [
        c.label,
        SYSTEM_LABELS[s.system],
        `${(im.requestsPerSecond / s.requestsPerSecond).toFixed(2)}x`,
        `${(im.cpuMicrosPerRequest / s.cpuMicrosPerRequest).toFixed(2)}x`,
        `${(im.p99Ms / s.p99Ms).toFixed(2)}x`,
      ]);
  });
  const coldRows = r.cold.map((c) => [
    c.system,
    c.outputFormat,
    String(c.runs),
    c.medianMs.toFixed(0),
    `${c.minMs.toFixed(0)}-${c.maxMs.toFixed(0)}`,
    c.cpuMsPerRequest === undefined ? "-" : c.cpuMsPerRequest.toFixed(0),
    int(c.outputBytes),
    String(c.errors),
    c.peakRssBytes === undefined ? "-" : mib(c.peakRssBytes),
    c.note,
  ]);
  const herdRows = r.herd.map((x) => [
    x.system,
    String(x.concurrency),
    String(x.runs),
    x.wallMs.toFixed(0),
    x.wallsMs.map((w) => w.toFixed(0)).join(", "),
    `${x.ok}/${x.errors}`,
    String(x.originRequests),
    x.transforms === undefined ? "n/a" : String(x.transforms),
    x.serverCpuSeconds.toFixed(2),
    mib(x.peakRssBytes),
  ]);
  const m = r.mixed;
  const mixedRows = [
    ["originals x widths x formats", `${m.originals} x 5 x 2 = ${m.variants} variants`],
    ["working set (sum of charged variant sizes)", `${mib1(m.workingSetBytes)} MiB`],
    ["memory cache (--cache-max-bytes, originals share 0)", `${mib1(m.cacheBudgetBytes)} MiB (10%)`],
    ["trace", `${m.traceLength} requests, Zipf s=${m.zipfExponent}, seeded; ${m.clients} concurrent clients`],
    ["replayed", `${m.completed} requests in ${m.seconds.toFixed(1)} s, ${m.errors} errors`],
    ["hit ratio (X-Cache: HIT)", `${(m.hitRatio * 100).toFixed(1)}%`],
    ["hit or collapsed (no origin fetch, no transform of its own)", `${(m.hitOrCollapsedRatio * 100).toFixed(1)}%`],
    ["ideal LRU on the same trace and budget (sequential)", `${(m.lruHitRatio * 100).toFixed(1)}%`],
    [
      "the same LRU in the replay's real order (lookup at start, insert when the transform finished)",
      `${(m.concurrentLruHitRatio * 100).toFixed(1)}% (compare with the strict HIT ratio)`,
    ],
    ["origin fetches / origin offload", `${m.originFetches} / ${(m.originOffload * 100).toFixed(1)}%`],
    ["transforms", String(m.transforms)],
    ["peak RSS", `${mib(m.peakRssBytes)} MiB`],
  ];
  const windowRows = m.windows.map((w) => [
    w.endSeconds.toFixed(0),
    String(w.requests),
    pct(w.hitRatio),
    pct(w.originOffload),
    mib1(w.cacheBytes),
  ]);
  const o = r.overload;
  const overloadRows = [
    [
      String(o.concurrency),
      String(o.transformQueue),
      String(o.served),
      String(o.shed),
      JSON.stringify(o.statuses),
      o.wallMs.toFixed(0),
      mib(o.peakRssBytes),
      mib(o.cacheBudgetBytes),
    ],
  ];
  const w = r.workers;
  const w1 = w.cached[0];
  const w2 = w.cached[1];
  const c1 = w.cold[0];
  const c2 = w.cold[1];
  const workerCachedRows = w.cached.map((s) => summaryRow(s.system === "imagika" ? "1 worker" : "2 workers", s));
  const workerColdRows = w.cold.map((c) => [
    String(c.workers),
    `${c.requests} (${c.distinctVariants} variants x 4)`,
    c.wallMs.toFixed(0),
    c.requestsPerSecond.toFixed(1),
    String(c.errors),
    String(c.originRequests),
    c.serverCpuSeconds.toFixed(2),
    mib(c.peakRssBytes),
  ]);
  const verdictRows = verdicts(r).map((v) => [v.target, v.measured, v.isMet ? "met" : "NOT MET"]);
  return [
    h("Targets (issue 7)"),
    t(["target", "measured", ""], verdictRows),
    h("1-2. Cached hits (wrk)"),
    t(SUMMARY_HEADER, cachedRows),
    "",
    t(["file", "peer", "req/s Imagika/peer", "CPU/req Imagika/peer", "p99 Imagika/peer"], ratioRows),
    "",
    `Issue 2's comparison with nginx proxy_cache (origin requests during the cached runs: ${r.originRequestsDuringRuns}):`,
    "",
    isMarkdown ? formatMarkdownTables(r.comparisons) : formatConsoleTables(r.comparisons),
    h("3. Cold transform, 4K JPEG -> 1280 px, sequential"),
    t(
      [
        "system",
        "output",
        "runs",
        "median ms",
        "range ms",
        "server CPU ms/req",
        "bytes",
        "errors",
        "peak RSS MiB",
        "note",
      ],
      coldRows,
    ),
    h(`4. Herd: ${r.herd[0]?.concurrency ?? "?"} concurrent requests for one new variant`),
    t(
      [
        "system",
        "requests",
        "herds",
        "wall ms (median)",
        "each herd ms",
        "ok/errors",
        "origin requests (per herd, most)",
        "transforms (per herd, most)",
        "server CPU s (median)",
        "peak RSS MiB",
      ],
      herdRows,
    ),
    h("5. Mixed Zipf workload, memory cache at 10% of the working set"),
    t(["figure", "value"], mixedRows),
    "",
    t(["t (s)", "requests", "hit ratio", "origin offload", "cache MiB"], windowRows),
    h("6. Overload past --transform-queue"),
    t(
      ["concurrent cold", "queue", "served", "shed (503/429)", "statuses", "wall ms", "peak RSS MiB", "cache MiB"],
      overloadRows,
    ),
    h("7. --workers 2 against 1 (issue 8)"),
    `${w.placement}; ${w.sharedTiers}. Throughput ratio 2/1: cached small ${w1 && w2 ? (w2.requestsPerSecond / w1.requestsPerSecond).toFixed(2) : "?"}x, cold set ${c1 && c2 ? (c2.requestsPerSecond / c1.requestsPerSecond).toFixed(2) : "?"}x; origin requests for the cold set: ${c1?.originRequests ?? "?"} (1 worker) vs ${c2?.originRequests ?? "?"} (2 workers).`,
    "",
    t(SUMMARY_HEADER, workerCachedRows),
    "",
    t(
      ["workers", "requests", "wall ms", "req/s", "errors", "origin requests", "server CPU s", "peak RSS MiB (sum)"],
      workerColdRows,
    ),
  ].join("\n\n");
}

function formatMarkdownReport(generatedAt: string, r: Results): string {
  const { settings: s, environment: e } = r;
  const contended = r.measurements.filter(isContended).length;
  return `# Benchmark: Imagika and the servers users would pick instead${s.isQuick ? " (quick run)" : ""}

Generated by \`npm run bench${s.isQuick ? " -- --quick" : ""}\` on ${generatedAt} at \`${r.revision}\`. How to read it: [docs/benchmarks.md](../../docs/benchmarks.md).

- Machine: ${e.cpuModel}, ${e.cores} cores, Linux ${e.kernel}, Node ${e.node}; load average ${e.loadAverage1m.toFixed(2)} at the start
- Peers: nginx ${e.nginx} (proxy_cache; static; image_filter), ${e.varnish}, ipx ${r.versions.ipx} (sharp ${r.versions["ipx's sharp"]}), ${e.vips} (vipsthumbnail), bare sharp 0.35.5; load: ${e.wrk}
- Cached runs: \`wrk -t${s.threads} -c${s.connections} -d${s.durationSeconds}s --latency\`, ${s.rounds} measured round(s) per system and file, order rotating each round, ${s.warmupSeconds} s warm-up each; ipx: \`-t1 -c4 -d${s.ipxSeconds}s\`, once; ${contended} of ${r.measurements.length} measured runs contended
- Pinning: ${r.pinning}
- Files: ${r.fixtures.map((f) => `\`${f.fileName}\` ${f.label} (${f.bytes.toLocaleString("en-US")} bytes)`).join("; ")}; cold, herd, mixed, overload: the sample library (4K, \`origin-server/samples.ts\`, seed 42)
- Imagika: \`${r.proxyCommand.replace(/ --origin \S+/, " --origin <origin>").replace(/ --port \d+/, " --port <port>")}\`; log ${r.proxyLog}

${formatReportBody(r, true)}

\`wrk cores\` near 1.00: wrk's own core was the limit, so that row's req/s is a floor for the server, and CPU µs per request
is the figure to compare. \`contended\`: runs where other processes took more than 15% of the server's core.
`;
}

/** Imagika / peer ratio charts, written beside latest.md for the README. */
function buildCharts(r: Results): Record<string, Chart> {
  const bars = (fixture: string, pick: (im: Summary, peer: Summary) => number, detail: (s: Summary) => string) => {
    const c = r.cached.find((x) => x.fixture === fixture);
    const im = c?.summaries.find((s) => s.system === "imagika");
    if (!c || !im) return [];
    return c.summaries
      .filter((s) => s.system !== "imagika" && s.system !== "ipx")
      .map((s) => ({
        label: `${fixture === "small" ? "small" : "4K"} vs ${SYSTEM_LABELS[s.system]}`,
        value: pick(im, s),
        detail: detail(s),
      }));
  };
  const ipxSmall = findSummary(r, "small", "ipx");
  const imSmall = findSummary(r, "small", "imagika");
  const coldOf = (name: string): ColdRow | undefined => r.cold.find((c) => c.system === name);
  const ci = coldOf("imagika");
  return {
    "cached-throughput.svg": {
      title: "Cached hits: requests/s, Imagika / peer",
      subtitle: "same machine, same run, wrk over loopback; above 1 = Imagika serves more",
      isHigherBetter: true,
      target: { value: 0.65, label: "target 0.65x nginx proxy_cache (small)" },
      bars: [
        ...bars(
          "small",
          (im, s) => im.requestsPerSecond / s.requestsPerSecond,
          (s) => `${int(s.requestsPerSecond)} req/s`,
        ),
        ...(ipxSmall && imSmall
          ? [
              {
                label: "small vs ipx (re-transforms)",
                value: imSmall.requestsPerSecond / ipxSmall.requestsPerSecond,
                detail: `${int(ipxSmall.requestsPerSecond)} req/s`,
              },
            ]
          : []),
        ...bars(
          "4k",
          (im, s) => im.requestsPerSecond / s.requestsPerSecond,
          (s) => `${int(s.requestsPerSecond)} req/s`,
        ),
      ],
    },
    "cached-cpu.svg": {
      title: "Cached hits: server CPU per request, Imagika / peer",
      subtitle: "from /proc utime+stime; below 1 = Imagika spends less CPU per response",
      isHigherBetter: false,
      bars: [
        ...bars(
          "small",
          (im, s) => im.cpuMicrosPerRequest / s.cpuMicrosPerRequest,
          (s) => `${s.cpuMicrosPerRequest.toFixed(0)} µs/req`,
        ),
        ...bars(
          "4k",
          (im, s) => im.cpuMicrosPerRequest / s.cpuMicrosPerRequest,
          (s) => `${s.cpuMicrosPerRequest.toFixed(0)} µs/req`,
        ),
      ],
    },
    "cold-transform.svg": {
      title: "Cold 4K JPEG -> 1280 px: latency, Imagika / peer",
      subtitle: "one request at a time, every request cold; below 1 = Imagika answers sooner",
      isHigherBetter: false,
      target: { value: 1.15, label: "target <= 1.15x bare sharp" },
      bars: ci
        ? r.cold
            .filter((c) => c.system !== "imagika" && c.system !== "vipsthumbnail")
            .map((c) => ({
              label: `vs ${c.system}${c.outputFormat === "jpeg" ? " (JPEG)" : ""}`,
              value: ci.medianMs / c.medianMs,
              detail: `${c.medianMs.toFixed(0)} ms`,
            }))
        : [],
    },
    "herd.svg": {
      title: `Herd of ${r.herd[0]?.concurrency ?? "?"} requests for one new variant: wall time, Imagika / peer`,
      subtitle: "below 1 = Imagika done sooner; origin requests in brackets",
      isHigherBetter: false,
      bars: r.herd
        .filter((x) => x.system !== "imagika")
        .map((x) => {
          const hi = r.herd.find((y) => y.system === "imagika");
          return {
            label: `vs ${x.system}`,
            value: hi ? hi.wallMs / x.wallMs : Number.NaN,
            detail: `${x.wallMs.toFixed(0)} ms (${x.originRequests} origin req; Imagika ${hi?.originRequests ?? "?"})`,
          };
        }),
    },
  };
}

function writeOutputs(generatedAt: string, results: Results, isFresh: boolean): void {
  const { wrkOutputs, ...json } = results;
  const document = `${JSON.stringify({ generatedAt, ...json }, null, 2)}\n`;
  writeFileSync(join(RESULTS_DIR, "latest.json"), document);
  writeFileSync(join(RESULTS_DIR, "latest.md"), formatMarkdownReport(generatedAt, results));
  const charts = buildCharts(results);
  for (const [file, chart] of Object.entries(charts)) writeFileSync(join(RESULTS_DIR, file), renderBarChart(chart));
  // Charts of an older layout that this run did not write would be stale: remove them.
  for (const file of readdirSync(RESULTS_DIR))
    if (file.endsWith(".svg") && !(file in charts)) rmSync(join(RESULTS_DIR, file));
  let raw = "";
  if (isFresh) {
    const rawDir = join(RESULTS_DIR, "raw");
    mkdirSync(rawDir, { recursive: true });
    const stamp = generatedAt.replace(/[:.]/g, "-");
    writeFileSync(join(rawDir, `${stamp}.json`), document);
    writeFileSync(join(rawDir, `${stamp}-wrk.txt`), (wrkOutputs ?? []).join("\n"));
    raw = ` and raw/${stamp}.json`;
  }
  console.log(
    `\nwrote ${relative(REPO_ROOT, join(RESULTS_DIR, "latest.json"))}, latest.md, ${Object.keys(charts).join(", ")}${raw}`,
  );
}

main().catch((error: unknown) => {
  console.error(`\nbench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
