/**
 * `npm run bench`: Imagika against nginx proxy_cache, both serving cached originals from the same loopback origin.
 * Two files (a ~100 KB JPEG and a ~3 MB 4K JPEG), wrk load, systems interleaved, medians over rounds, CPU per request
 * from /proc. Flags: --quick (under 2 minutes), --duration <s>, --connections <n>, --threads <n>, --rounds <n>.
 * Results: bench/results/latest.{json,md}; raw wrk output under bench/results/raw/ (git-ignored). See docs/benchmarks.md.
 */
import { mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, readFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startOriginServer } from "../origin-server/server.ts";
import type { RunningOrigin } from "../origin-server/server.ts";
import { installCleanup, stopAllChildren } from "./lib/children.ts";
import { writeFixtures } from "./lib/fixtures.ts";
import type { Fixture } from "./lib/fixtures.ts";
import { startImagika } from "./lib/imagika.ts";
import type { RunningImagika } from "./lib/imagika.ts";
import { startNginx } from "./lib/nginx.ts";
import type { RunningNginx } from "./lib/nginx.ts";
import { busyShare, readCoreTimes, readPeakRssBytes, sumCpuSeconds, waitForIdle } from "./lib/proc.ts";
import {
  compare,
  formatConsoleTables,
  formatMarkdownTables,
  isContended,
  otherWorkShare,
  summarize,
} from "./lib/report.ts";
import type { Comparison, Measurement, SystemName, Target } from "./lib/report.ts";
import { canPin, describeEnvironment, ensureTools, findFreePort, gitRevision } from "./lib/system.ts";
import type { Environment } from "./lib/system.ts";
import type { Placement } from "./lib/placement.ts";
import { runWrk } from "./lib/wrk.ts";

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(BENCH_DIR, "..");
const RESULTS_DIR = join(BENCH_DIR, "results");

/** Issue 2's targets: the proxy's cache-hit path against nginx proxy_cache on the same core. */
const TARGETS: readonly Omit<Target, "label">[] = [
  { fixture: "small", minRequestsRatio: 0.65, maxCpuMicrosPerRequest: 45 },
  { fixture: "4k", minRequestsRatio: 0.9, maxCpuMicrosPerRequest: 700 },
];

/** Server on core 0; wrk, this runner and the origin on core 1, so load generation never steals the server's core. */
const SERVER_CPUS = "0";
const LOAD_CPUS = "1";

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
}

const HELP = `Usage: npm run bench -- [options]

Imagika vs nginx proxy_cache on loopback (wrk, interleaved rounds, medians, CPU µs per request).

  --quick            short runs (3 s, 2 rounds): the whole bench in under 2 minutes
  --duration <s>     seconds per measured wrk run (default 10; quick 3)
  --connections <n>  wrk connections (default 64)
  --threads <n>      wrk threads (default 2)
  --rounds <n>       measured runs per system and file (default 3; quick 2; at least 2)
  --render <json>    rewrite latest.{json,md} from a saved bench/results/raw/<stamp>.json (no load is run)
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
    durationSeconds: positiveInt("duration", values.duration, isQuick ? 3 : 10),
    warmupSeconds: isQuick ? 1 : 3,
    rounds: positiveInt("rounds", values.rounds, isQuick ? 2 : 3, 2),
    threads,
    connections,
    isPinned: canPin(),
    niceness: values.nice ? -10 : 0,
  };
}

interface Server {
  readonly name: SystemName;
  readonly url: string;
  /** Every process whose CPU counts (nginx: master + worker). */
  readonly cpuPids: readonly number[];
  /** The process whose peak RSS is reported (nginx: the worker; its master idles). */
  readonly rssPid: number;
}

/** GETs the file twice through a server and insists the second answer is a complete cache hit. */
async function checkCacheHit(server: Server, fixture: Fixture): Promise<void> {
  const url = `${server.url}/img/${fixture.fileName}`;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const res = await fetch(url);
    const body = await res.arrayBuffer();
    if (res.status !== 200 || body.byteLength !== fixture.bytes)
      throw new Error(
        `${server.name}: GET ${url} gave ${res.status} with ${body.byteLength} of ${fixture.bytes} bytes`,
      );
    if (attempt > 1 && res.headers.get("x-cache") === "HIT") return;
  }
  throw new Error(`${server.name}: ${url} is not served from its cache (no X-Cache: HIT after 3 requests)`);
}

function pct(n: number): string {
  return `${(n * 100).toFixed(0)}%`;
}

function describePinning(settings: Settings): string {
  return settings.isPinned
    ? `server (Imagika or nginx) pinned to core ${SERVER_CPUS} with taskset; wrk, this runner and the origin on core ${LOAD_CPUS}`
    : "no pinning (taskset missing or fewer than 2 cores): server and wrk share the cores";
}

/** Rewrites latest.{json,md} from a raw result file, e.g. to publish an earlier uncontended run. */
async function renderSaved(path: string): Promise<void> {
  const text = await readFile(path, "utf8");
  const saved = JSON.parse(text) as Omit<Results, "wrkOutputs"> & { generatedAt: string };
  writeFileSync(join(RESULTS_DIR, "latest.json"), text);
  writeFileSync(join(RESULTS_DIR, "latest.md"), formatMarkdownReport(saved.generatedAt, { ...saved, wrkOutputs: [] }));
  console.log(`wrote latest.json and latest.md from ${path}`);
}

async function main(): Promise<void> {
  const renderAt = process.argv.indexOf("--render");
  if (renderAt >= 0) {
    const path = process.argv[renderAt + 1];
    if (path === undefined) throw new Error("--render: give a raw result file");
    return renderSaved(path);
  }
  const settings = parseSettings(process.argv.slice(2));
  if (!settings) return void console.log(HELP);
  ensureTools();
  if (settings.niceness < 0 && process.getuid?.() !== 0) throw new Error("--nice needs root (a negative nice value)");
  if (settings.isPinned) spawnSync("taskset", ["-a", "-p", "-c", LOAD_CPUS, String(process.pid)], { stdio: "ignore" });
  const environment = describeEnvironment();
  const pinning = `${describePinning(settings)}${settings.niceness === 0 ? "" : `; servers and wrk at nice ${settings.niceness}`}`;
  const revision = gitRevision();
  const dirtySources = spawnSync("git", ["status", "--porcelain", "--", "src", "origin-server"], {
    cwd: REPO_ROOT,
    encoding: "utf8",
  }).stdout.trim();

  console.log(
    `Imagika benchmark${settings.isQuick ? " (quick)" : ""} at ${revision}${dirtySources ? " + uncommitted changes in src/" : ""}`,
  );
  console.log(
    `  Node ${environment.node} | ${environment.cpuModel} | ${environment.cores} cores | Linux ${environment.kernel}`,
  );
  console.log(
    `  nginx ${environment.nginx} | ${environment.wrk} | load average ${environment.loadAverage1m.toFixed(2)}`,
  );
  console.log(`  pinning: ${pinning}`);
  console.log(
    `  wrk -t${settings.threads} -c${settings.connections} -d${settings.durationSeconds}s --latency; ${settings.rounds} rounds per system and file, interleaved; ${settings.warmupSeconds} s unmeasured warm-up each`,
  );

  const tempDir = await mkdtemp(join(tmpdir(), "imagika-bench-"));
  installCleanup(() => rmSync(tempDir, { recursive: true, force: true }));
  const originDir = join(tempDir, "origin");
  mkdirSync(originDir);
  const proxyLogPath = join(tempDir, "imagika.log");

  let origin: RunningOrigin | undefined;
  let imagika: RunningImagika | undefined;
  let nginx: RunningNginx | undefined;
  try {
    const fixtures = await writeFixtures(originDir);
    for (const f of fixtures) console.log(`  file ${f.fileName}: ${f.label}, ${f.bytes.toLocaleString("en-US")} bytes`);
    origin = await startOriginServer({
      dir: originDir,
      port: 0,
      host: "127.0.0.1",
      latencyMs: 0,
      bandwidthBytesPerSecond: 0,
    });
    const serverPlacement: Placement = {
      cpus: settings.isPinned ? SERVER_CPUS : undefined,
      niceness: settings.niceness,
    };
    const loadPlacement: Placement = { cpus: settings.isPinned ? LOAD_CPUS : undefined, niceness: settings.niceness };
    imagika = await startImagika({
      originUrl: origin.url,
      port: await findFreePort(),
      logPath: proxyLogPath,
      stderrPath: join(tempDir, "imagika.stderr.log"),
      placement: serverPlacement,
    });
    nginx = await startNginx({
      originUrl: origin.url,
      port: await findFreePort(),
      dir: join(tempDir, "nginx"),
      placement: serverPlacement,
    });
    console.log(
      `  origin ${origin.url} | imagika ${imagika.url} (pid ${imagika.pid}) | nginx ${nginx.url} (worker pid ${nginx.workerPid})`,
    );
    console.log(`  proxy log: level info, JSON lines to a file (${proxyLogPath}, deleted at the end)\n`);

    const servers: Record<SystemName, Server> = {
      imagika: { name: "imagika", url: imagika.url, cpuPids: [imagika.pid], rssPid: imagika.pid },
      nginx: { name: "nginx", url: nginx.url, cpuPids: nginx.allPids, rssPid: nginx.workerPid },
    };
    for (const server of Object.values(servers)) for (const f of fixtures) await checkCacheHit(server, f);
    const originRequestsBefore = origin.requestCount();

    const measurements: Measurement[] = [];
    const wrkOutputs: string[] = [];
    const totalSteps = fixtures.length * 2 * (settings.rounds + 1);
    let step = 0;
    const runOnce = async (server: Server, fixture: Fixture, round: number): Promise<Measurement> => {
      step++;
      const isWarmup = round === 0;
      const durationSeconds = isWarmup ? settings.warmupSeconds : settings.durationSeconds;
      const label = `[${String(step).padStart(2)}/${totalSteps}] ${fixture.id.padEnd(5)} ${server.name.padEnd(7)} ${isWarmup ? "warm-up  " : `round ${round}/${settings.rounds}`}`;
      const idleMs = await waitForIdle(server.cpuPids);
      process.stdout.write(`${label} ${durationSeconds} s ...`);
      const cpuBefore = sumCpuSeconds(server.cpuPids);
      const coreBefore = settings.isPinned ? readCoreTimes(Number(SERVER_CPUS)) : undefined;
      const wrk = await runWrk({
        url: `${server.url}/img/${fixture.fileName}`,
        threads: settings.threads,
        connections: settings.connections,
        durationSeconds,
        placement: loadPlacement,
      });
      const serverCpuSeconds = sumCpuSeconds(server.cpuPids) - cpuBefore;
      const serverCoreBusyShare = coreBefore && busyShare(coreBefore, readCoreTimes(Number(SERVER_CPUS)));
      const m: Measurement = {
        system: server.name,
        fixture: fixture.id,
        round,
        requests: wrk.requests,
        requestsPerSecond: wrk.requestsPerSecond,
        megabytesPerSecond: wrk.bytesRead / wrk.durationSeconds / 1e6,
        p50Ms: wrk.latencyMs.p50,
        p99Ms: wrk.latencyMs.p99,
        errors: wrk.errors,
        serverCpuSeconds,
        cpuMicrosPerRequest: wrk.requests > 0 ? (serverCpuSeconds * 1e6) / wrk.requests : Number.NaN,
        serverCoreShare: serverCpuSeconds / wrk.durationSeconds,
        serverCoreBusyShare,
        peakRssBytes: readPeakRssBytes(server.rssPid),
        loadGeneratorCoreShare: wrk.loadGeneratorCoreShare,
      };
      wrkOutputs.push(`# ${label.trim()}\n${wrk.output}`);
      console.log(
        ` ${Math.round(m.requestsPerSecond).toLocaleString("en-US").padStart(7)} req/s  ${m.megabytesPerSecond.toFixed(0).padStart(5)} MB/s  p50 ${m.p50Ms.toFixed(2)} ms  p99 ${m.p99Ms.toFixed(2)} ms  ${m.cpuMicrosPerRequest.toFixed(1)} µs/req  server ${pct(m.serverCoreShare)} of a core${m.serverCoreBusyShare === undefined ? "" : ` (core ${SERVER_CPUS} ${pct(m.serverCoreBusyShare)} busy)`}  wrk ${pct(m.loadGeneratorCoreShare)}  ${m.errors} errors${idleMs > 1500 ? `  (waited ${(idleMs / 1000).toFixed(1)} s for idle)` : ""}${isContended(m) ? `  CONTENDED: other work took ${pct(otherWorkShare(m))} of core ${SERVER_CPUS}` : ""}${settings.isPinned && m.loadGeneratorCoreShare > 0.9 ? "  WRK-BOUND: wrk's core was the limit" : ""}`,
      );
      return m;
    };

    // Per file: one unmeasured warm-up each (JIT, page cache, connection setup), then rounds alternating the order
    // (imagika, nginx | nginx, imagika | ...) so a drift in machine load does not always favour the same system.
    for (const fixture of fixtures) {
      await runOnce(servers.imagika, fixture, 0);
      await runOnce(servers.nginx, fixture, 0);
      for (let round = 1; round <= settings.rounds; round++) {
        const order: SystemName[] = round % 2 === 1 ? ["imagika", "nginx"] : ["nginx", "imagika"];
        for (const name of order) measurements.push(await runOnce(servers[name], fixture, round));
      }
    }
    const originRequestsDuringRuns = origin.requestCount() - originRequestsBefore;
    const proxyLogBytes = statSync(proxyLogPath).size;
    const nginxConfig = await readFile(nginx.configPath, "utf8");

    const comparisons: Comparison[] = TARGETS.map((target) => {
      const fixture = fixtures.find((f) => f.id === target.fixture);
      if (!fixture) throw new Error(`no fixture ${target.fixture}`);
      const pick = (system: SystemName): Measurement[] =>
        measurements.filter((m) => m.fixture === target.fixture && m.system === system);
      return compare(summarize(pick("imagika")), summarize(pick("nginx")), {
        ...target,
        label: fixture.id === "small" ? "small (~100 KB)" : "4K original (~3 MB)",
      });
    });

    console.log(
      `\nMedians of ${settings.rounds} runs per row (errors: sum; spread: half the max-min range of req/s)\n`,
    );
    console.log(formatConsoleTables(comparisons));
    const contended = measurements.filter(isContended).length;
    if (contended > 0)
      console.log(
        `\nWARNING: ${contended} of ${measurements.length} measured runs were CONTENDED (other work took over 15% of core ${SERVER_CPUS}): their req/s is not a comparison. Rerun on a quieter machine or with --nice before quoting it.`,
      );
    console.log(
      `\norigin requests during measured runs: ${originRequestsDuringRuns} (0 = every response was a cache hit); proxy log written: ${(proxyLogBytes / 1e6).toFixed(0)} MB`,
    );

    writeResults({
      settings,
      environment,
      pinning,
      revision: dirtySources ? `${revision}+dirty` : revision,
      fixtures,
      comparisons,
      measurements,
      originRequestsDuringRuns,
      proxyCommand: imagika.command,
      proxyLog: `info, JSON lines to a file (${(proxyLogBytes / 1e6).toFixed(0)} MB written over the run)`,
      nginxConfig,
      wrkOutputs,
    });
  } finally {
    await imagika?.stop();
    await nginx?.stop();
    await origin?.close();
    await stopAllChildren(); // anything a failed start left behind
    rmSync(tempDir, { recursive: true, force: true });
  }
}

interface Results {
  readonly settings: Settings;
  readonly environment: Environment;
  readonly pinning: string;
  readonly revision: string;
  readonly fixtures: readonly Fixture[];
  readonly comparisons: readonly Comparison[];
  readonly measurements: readonly Measurement[];
  readonly originRequestsDuringRuns: number;
  readonly proxyCommand: string;
  readonly proxyLog: string;
  readonly nginxConfig: string;
  readonly wrkOutputs: readonly string[];
}

function writeResults(results: Results): void {
  const generatedAt = new Date().toISOString();
  const { wrkOutputs, ...json } = results;
  const rawDir = join(RESULTS_DIR, "raw");
  mkdirSync(rawDir, { recursive: true });
  const stamp = generatedAt.replace(/[:.]/g, "-");
  const document = `${JSON.stringify({ generatedAt, ...json }, null, 2)}\n`;
  writeFileSync(join(RESULTS_DIR, "latest.json"), document);
  writeFileSync(join(RESULTS_DIR, "latest.md"), formatMarkdownReport(generatedAt, results));
  writeFileSync(join(rawDir, `${stamp}.json`), document);
  writeFileSync(join(rawDir, `${stamp}-wrk.txt`), wrkOutputs.join("\n"));
  console.log(
    `\nwrote ${relative(REPO_ROOT, join(RESULTS_DIR, "latest.json"))}, latest.md and raw/${stamp}{.json,-wrk.txt}`,
  );
}

function formatMarkdownReport(generatedAt: string, r: Results): string {
  const { settings: s, environment: e } = r;
  return `# Benchmark: Imagika vs nginx proxy_cache${s.isQuick ? " (quick run)" : ""}

Generated by \`npm run bench${s.isQuick ? " -- --quick" : ""}\` on ${generatedAt} at \`${r.revision}\`. How to read it: [docs/benchmarks.md](../../docs/benchmarks.md).

- Machine: ${e.cpuModel}, ${e.cores} cores, Linux ${e.kernel}, Node ${e.node}, nginx ${e.nginx}, ${e.wrk}; load average ${e.loadAverage1m.toFixed(2)} at the start
- Load: \`wrk -t${s.threads} -c${s.connections} -d${s.durationSeconds}s --latency\`, ${s.rounds} measured rounds per system and file, systems interleaved (order alternates per round), ${s.warmupSeconds} s unmeasured warm-up each; medians below
- Pinning: ${r.pinning}
- Files (from a loopback origin, served from each system's cache): ${r.fixtures.map((f) => `\`${f.fileName}\` ${f.label} (${f.bytes.toLocaleString("en-US")} bytes)`).join("; ")}
- Imagika: \`${r.proxyCommand.replace(/ --origin \S+/, " --origin <origin>").replace(/ --port \d+/, " --port <port>")}\`; log ${r.proxyLog}
- nginx: 1 worker, \`proxy_cache\`, \`sendfile on\`, \`tcp_nopush off\`, \`access_log off\`; CPU counts every long-lived nginx process (master, worker, cache manager), RSS is the worker's
- Origin requests during measured runs: ${r.originRequestsDuringRuns} (0 = every measured response was a cache hit)

${formatMarkdownTables(r.comparisons)}

\`wrk cores\` near 1.00: wrk's own core was the limit, so that row's req/s is a floor for the server, and CPU µs per request
is the figure to compare. \`contended\`: runs where other processes took more than 15% of the server's core.
`;
}

main().catch((error: unknown) => {
  console.error(`\nbench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
