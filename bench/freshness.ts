/**
 * `npm run bench:freshness`: issue 20's two targets, Imagika beside nginx (proxy_cache_revalidate,
 * proxy_cache_use_stale) and Varnish (keep, grace) on the same origin, when they are installed.
 *
 * 1. Revalidated hits. K 4K originals (Imagika: each with 5 variants) are cached with a 1 s freshness; each round
 *    waits until they are stale and asks for one entry per original: every proxy sends one conditional request and
 *    gets a 304. Reported: the proxy's CPU per revalidated request (every thread of every process of it, from
 *    /proc/<pid>/task/<tid>/schedstat, nanoseconds) beside its CPU per fresh hit, the origin's 200s and 304s, and for Imagika that no transform ran and every other variant was a hit
 *    right after.
 * 2. Origin down. The entries are cached and stale; the origin is then closed (connections refused) or answers 500,
 *    and 16 clients ask for them for a few seconds. Reported: the share of 200s.
 *
 * The origin runs in this process (it counts 200s and 304s and can fail on demand); nothing is pinned.
 *
 *   --originals 6     K
 *   --rounds 5        revalidation rounds
 *   --load-s 5        length of each origin-down load
 *   --quick           3 originals, 2 rounds, 2 s loads
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { Socket } from "node:net";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Agent, fetch } from "undici";
import { installCleanup } from "./lib/children.ts";
import { writeFixtures } from "./lib/fixtures.ts";
import { startImagika } from "./lib/imagika.ts";
import { startNginx } from "./lib/nginx.ts";
import { sumTaskCpuSeconds, waitForIdle } from "./lib/proc.ts";
import { median } from "./lib/report.ts";
import { findFreePort } from "./lib/system.ts";
import { startVarnish } from "./lib/varnish.ts";
import { spawnSync } from "node:child_process";

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const RESULTS_DIR = join(BENCH_DIR, "results");
const { values: args } = parseArgs({
  options: {
    originals: { type: "string", default: "6" },
    rounds: { type: "string", default: "5" },
    "load-s": { type: "string", default: "5" },
    quick: { type: "boolean", default: false },
  },
});
const ORIGINALS = args.quick ? 3 : Number(args.originals);
const ROUNDS = args.quick ? 2 : Number(args.rounds);
const LOAD_SECONDS = args.quick ? 2 : Number(args["load-s"]);
const LOAD_CLIENTS = 16;
/** Freshness of every cached entry: short, so that a round only waits a second for them to go stale. */
const TTL_SECONDS = 1;
const VARIANTS = ["w=640&f=webp", "w=320&f=webp", "w=1280&f=webp", "w=960&f=jpeg", "w=480&f=avif"];
const PLACEMENT = { cpus: undefined, niceness: 0 };

type Mode = "up" | "refused" | "500";

/** The origin: the 4K fixture under K names, ETag + Last-Modified, 304 to If-None-Match; fails on demand. */
class BenchOrigin {
  mode: Mode = "up";
  full = 0;
  notModified = 0;
  readonly #body: Buffer;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  port = 0;

  constructor(body: Buffer) {
    this.#body = body;
  }

  async start(port = 0): Promise<void> {
    const server = createServer((req, res) => {
      if (this.mode === "500") {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end("failing on purpose");
        return;
      }
      if (!/^\/img-\d+\.jpg$/.test(req.url ?? "")) {
        res.writeHead(req.url === "/" ? 200 : 404);
        res.end();
        return;
      }
      const headers = { etag: `"${req.url}-v1"`, "last-modified": "Wed, 01 Jan 2025 00:00:00 GMT" };
      if (req.headers["if-none-match"] === headers.etag) {
        this.notModified++;
        res.writeHead(304, headers);
        res.end();
        return;
      }
      this.full++;
      res.writeHead(200, { ...headers, "content-type": "image/jpeg", "content-length": this.#body.byteLength });
      res.end(this.#body);
    });
    server.keepAliveTimeout = 60_000;
    server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  /** Closes the port: new connections are refused, open ones are cut. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  reset(): void {
    this.full = 0;
    this.notModified = 0;
    this.mode = "up";
  }
}

interface Peer {
  readonly name: string;
  /** URLs of the entries of original `i` (the first is the one a revalidation round asks for). */
  urls(i: number): string[];
  pids(): readonly number[];
  stop(): Promise<void>;
  /** Imagika: /api/stats, for transforms and revalidations. */
  stats?(): Promise<Record<string, unknown>>;
}

const dispatcher = new Agent({ connections: LOAD_CLIENTS * 2, keepAliveTimeout: 30_000 });

async function get(url: string): Promise<{ status: number; cacheStatus: string; ms: number }> {
  const started = performance.now();
  const res = await fetch(url, { dispatcher });
  await res.arrayBuffer();
  return {
    status: res.status,
    cacheStatus: res.headers.get("cache-status") ?? res.headers.get("x-cache") ?? "",
    ms: performance.now() - started,
  };
}

const names = Array.from({ length: ORIGINALS }, (_, i) => `img-${i}.jpg`);

async function startPeer(
  name: string,
  origin: BenchOrigin,
  scenario: "revalidate" | "down",
  dir: string,
): Promise<Peer> {
  const port = await findFreePort();
  if (name.startsWith("imagika")) {
    // "imagika": a round asks for a variant (~50 KB); "imagika, original": for the 3 MB original, as the peers do.
    const isOriginalFirst = name !== "imagika";
    const running = await startImagika({
      originUrl: origin.url,
      port,
      logPath: "/dev/null",
      stderrPath: join(dir, `imagika-${scenario}.err`),
      placement: PLACEMENT,
      logLevel: "warn",
      // Revalidations in the foreground (no stale-while-revalidate), so that each round's requests do them.
      extraArgs: ["--cache-ttl-seconds", String(TTL_SECONDS), "--stale-while-revalidate-seconds", "0"],
    });
    return {
      name,
      urls: (i) => {
        const original = `${running.url}/img/${names[i]}`;
        const variants = VARIANTS.map((v) => `${original}?${v}`);
        return isOriginalFirst ? [original, ...variants] : [...variants, original];
      },
      pids: () => running.pids(),
      stop: () => running.stop(),
      stats: async () => (await (await fetch(`${running.url}/api/stats`)).json()) as Record<string, unknown>,
    };
  }
  if (name === "nginx") {
    const nginx = await startNginx({
      role: "revalidate",
      validSeconds: TTL_SECONDS,
      originUrl: origin.url,
      port,
      dir: join(dir, `nginx-${scenario}`),
      placement: PLACEMENT,
    });
    return {
      name,
      urls: (i) => [`${nginx.url}/img/${names[i]}`],
      pids: () => nginx.allPids,
      stop: () => nginx.stop(),
    };
  }
  // Varnish: `keep` lets it revalidate an expired object with a conditional request; with `grace` (the origin-down
  // scenario) it serves the stale object while it tries, which covers a failing origin.
  const grace = scenario === "down" ? "24h" : "0s";
  const varnish = await startVarnish({
    originUrl: origin.url,
    port,
    dir: join(dir, `varnish-${scenario}`),
    readyPath: `/${names[0]}`,
    placement: PLACEMENT,
    vcl: `vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "${origin.port}"; .connect_timeout = 2s; }
sub vcl_backend_response {
  # Varnish's stale-if-error: a failing background fetch keeps the graced object instead of replacing it.
  if (beresp.status >= 500 && bereq.is_bgfetch) {
    return (abandon);
  }
  set beresp.ttl = ${TTL_SECONDS}s;
  set beresp.grace = ${grace};
  set beresp.keep = 1h;
}
`,
  });
  return {
    name,
    urls: (i) => [`${varnish.url}/${names[i]}`],
    pids: () => varnish.allPids,
    stop: () => varnish.stop(),
  };
}

interface RevalidationResult {
  readonly system: string;
  readonly cpuMsPerRevalidation: number;
  readonly cpuMsPerHit: number;
  readonly medianRevalidationMs: number;
  readonly revalidations: number;
  readonly originFull: number;
  readonly origin304: number;
  readonly transforms: number | undefined;
  /** Imagika: the other variants and the original right after each revalidation, all hits? */
  readonly restAreHits: boolean | undefined;
  readonly statuses: readonly string[];
}

async function measureRevalidation(name: string, origin: BenchOrigin, dir: string): Promise<RevalidationResult> {
  const peer = await startPeer(name, origin, "revalidate", dir);
  try {
    for (let i = 0; i < ORIGINALS; i++) for (const url of peer.urls(i)) await get(url);
    for (let i = 0; i < ORIGINALS; i++) await get(peer.urls(i)[0]!); // every entry cached (nginx: 2nd request)
    const transformsBefore = Number((await peer.stats?.())?.transforms ?? 0);
    origin.full = 0;
    origin.notModified = 0;
    let revalidationCpu = 0;
    let hitCpu = 0;
    let restAreHits = true;
    const latencies: number[] = [];
    const statuses = new Set<string>();
    for (let round = 0; round < ROUNDS; round++) {
      await sleep(TTL_SECONDS * 1000 + 1100); // nginx counts freshness in whole seconds
      await waitForIdle(peer.pids(), { timeoutMs: 10_000, sampleMs: 100 });
      const before = sumTaskCpuSeconds(peer.pids());
      for (let i = 0; i < ORIGINALS; i++) {
        const answer = await get(peer.urls(i)[0]!);
        latencies.push(answer.ms);
        statuses.add(`${answer.status} ${answer.cacheStatus}`);
      }
      await sleep(50); // Varnish and nginx may finish writing after the answer
      revalidationCpu += sumTaskCpuSeconds(peer.pids()) - before;
      const hitsBefore = sumTaskCpuSeconds(peer.pids());
      for (let i = 0; i < ORIGINALS; i++) await get(peer.urls(i)[0]!);
      hitCpu += sumTaskCpuSeconds(peer.pids()) - hitsBefore;
      if (peer.stats) {
        for (let i = 0; i < ORIGINALS; i++) {
          for (const url of peer.urls(i).slice(1)) restAreHits &&= (await get(url)).cacheStatus === "imagika; hit";
        }
      }
    }
    const count = ORIGINALS * ROUNDS;
    const transforms = peer.stats ? Number((await peer.stats()).transforms ?? 0) - transformsBefore : undefined;
    return {
      system: name,
      cpuMsPerRevalidation: (revalidationCpu / count) * 1000,
      cpuMsPerHit: (hitCpu / count) * 1000,
      medianRevalidationMs: median(latencies),
      revalidations: count,
      originFull: origin.full,
      origin304: origin.notModified,
      transforms,
      restAreHits: peer.stats ? restAreHits : undefined,
      statuses: [...statuses],
    };
  } finally {
    await peer.stop();
  }
}

interface DownResult {
  readonly system: string;
  readonly failure: Mode;
  readonly requests: number;
  readonly ok: number;
  readonly others: Record<string, number>;
}

async function measureOriginDown(name: string, origin: BenchOrigin, failure: Mode, dir: string): Promise<DownResult> {
  const peer = await startPeer(name, origin, "down", dir);
  try {
    const urls = Array.from({ length: ORIGINALS }, (_, i) => peer.urls(i)).flat();
    for (const url of urls) await get(url);
    for (const url of urls) await get(url);
    await sleep(TTL_SECONDS * 1000 + 1100); // every entry stale
    if (failure === "refused") await origin.stop();
    else origin.mode = failure;
    const counts = new Map<string, number>();
    const deadline = performance.now() + LOAD_SECONDS * 1000;
    let next = 0;
    await Promise.all(
      Array.from({ length: LOAD_CLIENTS }, async () => {
        while (performance.now() < deadline) {
          const url = urls[next++ % urls.length]!;
          let key: string;
          try {
            key = String((await get(url)).status);
          } catch {
            key = "no answer";
          }
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
      }),
    );
    const requests = [...counts.values()].reduce((a, b) => a + b, 0);
    const others = Object.fromEntries([...counts].filter(([key]) => key !== "200"));
    return { system: name, failure, requests, ok: counts.get("200") ?? 0, others };
  } finally {
    await peer.stop();
    if (failure === "refused") await origin.start(origin.port);
    origin.reset();
  }
}

function has(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

function formatMarkdown(
  revalidation: readonly RevalidationResult[],
  down: readonly DownResult[],
  peersNote: string,
): string {
  const lines = [
    "# Freshness bench (`npm run bench:freshness`)",
    "",
    `${new Date().toISOString()}; ${ORIGINALS} 4K originals (3840x2160 JPEG, ~3 MB), ${ROUNDS} rounds, entries fresh ${TTL_SECONDS} s. ${peersNote}`,
    "",
    "## Revalidated hits (origin answers 304)",
    "",
    "| system | CPU per revalidated request | CPU per fresh hit | median latency | origin 200 / 304 | transforms | other entries hit after |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...revalidation.map(
      (r) =>
        `| ${r.system} | ${r.cpuMsPerRevalidation.toFixed(2)} ms | ${r.cpuMsPerHit.toFixed(2)} ms | ${r.medianRevalidationMs.toFixed(1)} ms | ${r.originFull} / ${r.origin304} | ${r.transforms ?? "n/a"} | ${r.restAreHits === undefined ? "n/a" : r.restAreHits ? "all" : "NOT ALL"} |`,
    ),
    "",
    "One request at a time, so each costs more CPU than under load (cold caches, a wake-up per request: a fresh hit costs",
    "~40 µs under wrk). The peers answer with the 3 MB original; `imagika` with a ~50 KB variant, `imagika, original`",
    "with the original. Revalidated: the other entries of each original (4 variants and the original) were fresh again.",
    "",
    "## Origin down, entries stale (16 clients)",
    "",
    "| system | origin | requests | 200 | other |",
    "| --- | --- | --- | --- | --- |",
    ...down.map(
      (d) =>
        `| ${d.system} | ${d.failure} | ${d.requests} | ${((d.ok / Math.max(1, d.requests)) * 100).toFixed(1)}% | ${JSON.stringify(d.others)} |`,
    ),
    "",
    "Imagika's clients ask for the 5 variants and the original of each original, the peers' for the 3 MB originals:",
    "compare the share of 200s, not the request counts. Imagika: `--stale-while-revalidate-seconds 0`, so these are",
    "stale-if-error answers; nginx: `proxy_cache_use_stale error timeout http_500 …`; Varnish: `grace` 24 h, and a",
    "failing background fetch abandoned (`return (abandon)`) so the graced object stays.",
    "",
  ];
  return lines.join("\n");
}

const dir = await mkdtemp(join(tmpdir(), "imagika-bench-freshness-"));
installCleanup(() => void rm(dir, { recursive: true, force: true }));
try {
  const fixtures = await writeFixtures(dir);
  const fourK = fixtures.find((f) => f.id === "4k");
  if (!fourK) throw new Error("no 4K fixture");
  const origin = new BenchOrigin(await readFile(join(dir, fourK.fileName)));
  await origin.start();
  const peers = [...(has("nginx") ? ["nginx"] : []), ...(has("varnishd") ? ["varnish"] : [])];
  const systems = ["imagika", ...peers];
  const missing = ["nginx", "varnish"].filter((peer) => !systems.includes(peer));
  const peersNote =
    missing.length === 0
      ? "nginx and Varnish beside Imagika."
      : `${missing.join(" and ")} not installed: measured without (apt-get install -y nginx varnish).`;
  console.log(`freshness bench: ${systems.join(", ")}; ${peersNote}`);
  const revalidation: RevalidationResult[] = [];
  for (const system of ["imagika", "imagika, original", ...peers]) {
    const result = await measureRevalidation(system, origin, dir);
    console.log(
      `${system}: ${result.cpuMsPerRevalidation.toFixed(2)} ms CPU per revalidated request (hit ${result.cpuMsPerHit.toFixed(2)} ms), ` +
        `origin 200/304 ${result.originFull}/${result.origin304}, transforms ${result.transforms ?? "n/a"}, ${result.statuses.join(" | ")}`,
    );
    revalidation.push(result);
  }
  const down: DownResult[] = [];
  for (const failure of ["refused", "500"] as const) {
    for (const system of systems) {
      const result = await measureOriginDown(system, origin, failure, dir);
      console.log(
        `${system}, origin ${failure}: ${result.ok}/${result.requests} answered 200 ${JSON.stringify(result.others)}`,
      );
      down.push(result);
    }
  }
  await origin.stop();
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, "freshness.json"), `${JSON.stringify({ revalidation, down }, null, 2)}\n`);
  const markdown = formatMarkdown(revalidation, down, peersNote);
  writeFileSync(join(RESULTS_DIR, "freshness.md"), markdown);
  console.log(`\n${markdown}`);
} finally {
  await dispatcher.close();
  await rm(dir, { recursive: true, force: true });
}
