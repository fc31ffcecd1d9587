// Issue 4's figures: a cold 4K JPEG -> 1280 px WebP through the whole proxy against the same sharp pipeline called
// directly (the floor), the herd (200 concurrent requests for one new variant) against one cold request, and the
// AVIF cost at the configured effort. Issue 19's: a cold gravity=attention smart crop 4K -> 400x400 against the same
// sharp call, and f=thumbhash of a 4K original already in memory. Ratios come from one run, interleaved, so machine
// noise cancels out.
// `node --import tsx bench/transform.ts [--quick] [--json <file>]`
import { execFileSync, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { generateSamples } from "../origin-server/samples.ts";
import { PROXY_SETTINGS } from "../src/config/proxy-settings.ts";
import { BareSharpProcess } from "./lib/bare-sharp.ts";
import { timedGet } from "./lib/client.ts";
import { getOnEach, openConnections } from "./lib/raw-client.ts";
import type { RawConnection } from "./lib/raw-client.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const isQuick = process.argv.includes("--quick");
const jsonAt = process.argv.indexOf("--json");
const jsonOut = jsonAt >= 0 ? process.argv[jsonAt + 1] : undefined;
const ROUNDS = isQuick ? 3 : 7;
const HERD = 200;

export interface TransformFigures {
  readonly proxyColdWebpMs: number;
  readonly bareSharpWebpMs: number;
  readonly coldRatio: number;
  readonly singleColdMs: number;
  readonly herdWallMs: number;
  readonly herdRatio: number;
  /** The same 200 requests once the variant is cached: the HTTP floor of the herd. */
  readonly herdHitWallMs: number;
  readonly herdOriginFetches: number;
  readonly herdTransforms: number;
  readonly proxyColdAvifMs: number;
  readonly bareSharpAvifMs: number;
  readonly avifBytes: number;
  readonly webpBytes: number;
  readonly avifEffort: number;
  /** Cold 4K -> 400x400 WebP, gravity=attention, through the proxy, and the same sharp call in its own process. */
  readonly proxyColdAttentionMs: number;
  readonly bareSharpAttentionMs: number;
  readonly attentionRatio: number;
  /** f=thumbhash of a 4K original the proxy already holds in memory: the request, end to end at the client. */
  readonly thumbhashMs: number;
  /** The same placeholder with bare sharp + thumbhash (fit inside 100x100, raw RGBA, rgbaToThumbHash). */
  readonly bareSharpThumbhashMs: number;
}

function hasTaskset(): boolean {
  try {
    execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/** The first image of the sample library: a 3840x2160 landscape JPEG (q90, ~3.2 MB), deterministic. */
async function makeOriginal(): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), "imagika-bench-sample-"));
  try {
    const { files } = await generateSamples({ dir, count: 1, seed: 42 });
    return await readFile(join(dir, files[0] ?? "landscape-01.jpg"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function waitFor(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  throw new Error(`${url} did not come up`);
}

async function timed(url: string, accept = "image/webp"): Promise<{ ms: number; bytes: number }> {
  const { ms, bytes, status } = await timedGet(url, accept);
  if (status !== 200) throw new Error(`${url} answered ${status}`);
  return { ms, bytes };
}

/** One GET of `url` on every connection at once; throws unless all answered 200. */
async function herd(connections: readonly RawConnection[], url: string): Promise<void> {
  const results = await getOnEach(connections, url, "image/webp");
  const failed = results.filter((r) => r.status !== 200).length;
  if (failed > 0) throw new Error(`${failed} of ${results.length} herd requests for ${url} failed`);
}

export async function runTransformBench(log: (line: string) => void = console.log): Promise<TransformFigures> {
  const dir = await mkdtemp(join(tmpdir(), "imagika-bench-transform-"));
  log("transform bench: generating a 4K JPEG original");
  const original = await makeOriginal();
  // One copy per cold request, so every proxied request pays origin read + transform, like a real cold miss:
  // webp, avif, attention and thumbhash rounds, plus 3 for warming and the herd.
  const copies = ROUNDS * 4 + 3;
  for (let i = 0; i < copies; i++) await writeFile(join(dir, `p${i}.jpg`), original);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  // Pinning (when taskset exists): the proxy and the bare-sharp floor (its own process) on core 0, this process (the
  // client) on core 1, so the client's CPU use slows neither and both transforms run on the same core.
  const canPin = hasTaskset();
  if (canPin) execFileSync("taskset", ["-a", "-p", "-c", "1", String(process.pid)], { stdio: "ignore" });
  log(
    `transform bench: ${canPin ? "proxy and bare sharp pinned to core 0, client to core 1" : "no taskset: processes unpinned"}`,
  );
  const proxy: ChildProcess = spawn(
    canPin ? "taskset" : process.execPath,
    [
      ...(canPin ? ["-c", "0", process.execPath] : []),
      "--no-memory-reducer", // as `npm start` and bin/imagika.js run it
      "--import",
      "tsx",
      "src/main.ts",
      "proxy",
      "--port",
      String(port),
      "--origin",
      dir,
      "--rate-limit",
      "0",
      "--log-level",
      "warn",
    ],
    { cwd: REPO, stdio: "ignore" },
  );
  const base = `http://127.0.0.1:${port}`;
  let bareSharp: BareSharpProcess | undefined;
  try {
    await waitFor(`${base}/healthz`);
    bareSharp = await BareSharpProcess.start(join(dir, "p0.jpg"), { cpus: canPin ? "0" : undefined, niceness: 0 });
    const effort = PROXY_SETTINGS.avifEffort.default;
    // Warm both paths (JIT, libvips caches off, code loaded) before measuring.
    await timed(`${base}/img/p${copies - 1}.jpg?w=1280&f=webp`);
    await bareSharp.run({ format: "webp" });

    const proxyWebp: number[] = [];
    const bareWebp: number[] = [];
    const proxyAvif: number[] = [];
    const bareAvif: number[] = [];
    const proxyAttention: number[] = [];
    const bareAttention: number[] = [];
    const thumbhash: number[] = [];
    const bareThumbhash: number[] = [];
    await bareSharp.run({ format: "attention" });
    await bareSharp.run({ format: "thumbhash" });
    let webpBytes = 0;
    let avifBytes = 0;
    for (let round = 0; round < ROUNDS; round++) {
      log(`transform bench: round ${round + 1}/${ROUNDS}`);
      const webp = await timed(`${base}/img/p${round}.jpg?w=1280&f=webp`);
      proxyWebp.push(webp.ms);
      webpBytes = webp.bytes;
      bareWebp.push((await bareSharp.run({ format: "webp" })).ms);
      const avif = await timed(`${base}/img/p${ROUNDS + round}.jpg?w=1280&f=avif`, "image/avif");
      proxyAvif.push(avif.ms);
      avifBytes = avif.bytes;
      bareAvif.push((await bareSharp.run({ format: "avif", avifEffort: effort })).ms);
      proxyAttention.push(
        (await timed(`${base}/img/p${2 * ROUNDS + round}.jpg?w=400&h=400&gravity=attention&f=webp`)).ms,
      );
      bareAttention.push((await bareSharp.run({ format: "attention" })).ms);
      // The original first reaches memory through another variant; then only the placeholder's work is timed.
      const inMemory = `${base}/img/p${3 * ROUNDS + round}.jpg`;
      await timed(`${inMemory}?w=16&f=webp`);
      thumbhash.push((await timed(`${inMemory}?f=thumbhash`, "*/*")).ms);
      bareThumbhash.push((await bareSharp.run({ format: "thumbhash" })).ms);
    }

    log(`transform bench: herd of ${HERD} concurrent requests for one new variant`);
    // Open 200 keep-alive connections first (a CDN or load balancer keeps such a pool to the proxy), so the herd
    // measures the proxy's work rather than 200 TCP handshakes on a 2-core machine shared with the load generator.
    // The herd's client is RawConnection (as lean as wrk): it shares core 1 with nothing else here, but a heavier
    // client's CPU would still be in the wall time (see bench/lib/raw-client.ts).
    const connections = await openConnections(base, HERD);
    await herd(connections, `${base}/img/p${copies - 1}.jpg?w=1280&f=webp`);
    // The herd asks for exactly what each cold WebP round asked for (a never-seen original, w=1280 WebP): one origin
    // read + one transform, so "one cold request" is the median of those rounds, not a single noisy sample.
    const before = (await (await fetch(`${base}/api/stats`)).json()) as { originFetches: number; transforms: number };
    const herdStarted = performance.now();
    await herd(connections, `${base}/img/p${copies - 2}.jpg?w=1280&f=webp`);
    const herdWallMs = performance.now() - herdStarted;
    const after = (await (await fetch(`${base}/api/stats`)).json()) as { originFetches: number; transforms: number };
    // The same herd again, now a cache hit: what 200 concurrent HTTP exchanges cost on this machine without any work.
    const hitStarted = performance.now();
    await herd(connections, `${base}/img/p${copies - 2}.jpg?w=1280&f=webp`);
    const herdHitWallMs = performance.now() - hitStarted;
    for (const c of connections) c.close();

    const figures: TransformFigures = {
      proxyColdWebpMs: median(proxyWebp),
      bareSharpWebpMs: median(bareWebp),
      coldRatio: median(proxyWebp) / median(bareWebp),
      singleColdMs: median(proxyWebp),
      herdWallMs,
      herdRatio: herdWallMs / median(proxyWebp),
      herdHitWallMs,
      herdOriginFetches: after.originFetches - before.originFetches,
      herdTransforms: after.transforms - before.transforms,
      proxyColdAvifMs: median(proxyAvif),
      bareSharpAvifMs: median(bareAvif),
      avifBytes,
      webpBytes,
      avifEffort: effort,
      proxyColdAttentionMs: median(proxyAttention),
      bareSharpAttentionMs: median(bareAttention),
      attentionRatio: median(proxyAttention) / median(bareAttention),
      thumbhashMs: median(thumbhash),
      bareSharpThumbhashMs: median(bareThumbhash),
    };
    return figures;
  } finally {
    await bareSharp?.stop();
    if (proxy.exitCode === null && proxy.signalCode === null) {
      const exited = new Promise((resolve) => proxy.once("exit", resolve));
      proxy.kill("SIGTERM");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const f = await runTransformBench();
  const rows = [
    ["cold 4K JPEG -> 1280 WebP, through the proxy (median)", `${f.proxyColdWebpMs.toFixed(0)} ms`],
    ["same pipeline, bare sharp in its own process on the proxy's core (floor)", `${f.bareSharpWebpMs.toFixed(0)} ms`],
    ["ratio proxy / floor (target <= 1.15)", f.coldRatio.toFixed(2)],
    ["one cold request (origin read + transform; the median above)", `${f.singleColdMs.toFixed(0)} ms`],
    [`herd: ${HERD} concurrent requests, one new variant (wall)`, `${f.herdWallMs.toFixed(0)} ms`],
    ["ratio herd / one cold (target <= 1.3)", f.herdRatio.toFixed(2)],
    [`the same ${HERD} requests once cached (HTTP floor)`, `${f.herdHitWallMs.toFixed(0)} ms`],
    ["ratio (herd - HTTP floor) / one cold", ((f.herdWallMs - f.herdHitWallMs) / f.singleColdMs).toFixed(2)],
    ["herd origin fetches / transforms (target 1 / 1)", `${f.herdOriginFetches} / ${f.herdTransforms}`],
    [
      `cold 4K -> 1280 AVIF (effort ${f.avifEffort}), through the proxy`,
      `${f.proxyColdAvifMs.toFixed(0)} ms (${(f.avifBytes / 1024).toFixed(0)} KiB vs WebP ${(f.webpBytes / 1024).toFixed(0)} KiB)`,
    ],
    ["same AVIF, bare sharp", `${f.bareSharpAvifMs.toFixed(0)} ms`],
    ["cold 4K -> 400x400 WebP, gravity=attention, through the proxy", `${f.proxyColdAttentionMs.toFixed(0)} ms`],
    ["same smart crop, bare sharp (floor)", `${f.bareSharpAttentionMs.toFixed(0)} ms`],
    ["ratio proxy / floor (target <= 1.15)", f.attentionRatio.toFixed(2)],
    ["f=thumbhash of a 4K original in memory, end to end (target < 60 ms)", `${f.thumbhashMs.toFixed(0)} ms`],
    ["same placeholder, bare sharp + thumbhash", `${f.bareSharpThumbhashMs.toFixed(0)} ms`],
  ];
  console.log(`\n| figure | value |\n| --- | --- |\n${rows.map(([a, b]) => `| ${a} | ${b} |`).join("\n")}`);
  if (jsonOut !== undefined) await writeFile(jsonOut, JSON.stringify(f, null, 2));
  process.exit(0);
}
