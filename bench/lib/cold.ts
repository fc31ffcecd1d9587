import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BareSharpProcess } from "./bare-sharp.ts";
import { DEFAULT_ACCEPT, timedGet } from "./client.ts";
import { getOnEach, openConnections } from "./raw-client.ts";
import { median } from "./report.ts";
import { placeCommand } from "./placement.ts";
import type { Placement } from "./placement.ts";
import { readPeakRssBytes, sumCpuSeconds, waitForIdle } from "./proc.ts";

/** A server that transforms: cold requests for `urlFor(file)` make it fetch `file` and resize it to 1280 px. */
export interface TransformServer {
  readonly name: string;
  /** What it answers with: WebP for Imagika and ipx; nginx image_filter only re-encodes JPEG. */
  readonly outputFormat: string;
  urlFor(file: string): string;
  cpuPids(): readonly number[];
  readonly rssPid: number;
  /** Transforms done so far, when the system can tell (Imagika: /api/stats; nginx: resize log lines). */
  transformCount?(): Promise<number>;
  /** A cheap URL to open keep-alive connections with before a herd. */
  readonly warmUrl: string;
}

export interface ColdRow {
  readonly system: string;
  readonly outputFormat: string;
  readonly runs: number;
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** Server CPU per request (every thread), median, ms; undefined for in-process sharp. */
  readonly cpuMsPerRequest: number | undefined;
  readonly outputBytes: number;
  readonly errors: number;
  readonly peakRssBytes: number | undefined;
  readonly note: string;
}

export interface ColdOptions {
  readonly servers: readonly TransformServer[];
  /** One distinct original per server and round (copies of one 4K JPEG), so every request is cold. */
  readonly fileFor: (server: string, round: number) => string;
  readonly originalPath: string;
  readonly rounds: number;
  /** Unmeasured cold requests per server first, on files `fileFor(server, -1)` .. `fileFor(server, -warmupRequests)`. */
  readonly warmupRequests: number;
  /** Where vipsthumbnail runs (the servers' core). */
  readonly serverPlacement: Placement;
  readonly tempDir: string;
  readonly progress: (line: string) => void;
}

/** Wall time of one `vipsthumbnail` run, ms (spawned on the servers' core, like a server would work there). */
function timeCommand(args: readonly string[], placement: Placement): number {
  const [command, wrapped] = placeCommand("vipsthumbnail", args, placement);
  const started = performance.now();
  const result = spawnSync(command, wrapped, { stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 });
  const ms = performance.now() - started;
  if (result.status !== 0) throw new Error(`vipsthumbnail ${args.join(" ")} failed: ${String(result.stderr)}`);
  return ms;
}

/**
 * Scenario 3: cold 4K JPEG -> 1280 px, one request at a time. Rounds interleave the systems (rotating who goes
 * first), each on its own never-seen original, and wait until every server is idle first. The bare sharp floor runs
 * in its own process on the servers' core (BareSharpProcess), like vipsthumbnail.
 */
export async function runColdSequential(options: ColdOptions): Promise<ColdRow[]> {
  const bareSharp = await BareSharpProcess.start(options.originalPath, options.serverPlacement);
  try {
    return await measureCold(options, bareSharp);
  } finally {
    await bareSharp.stop();
  }
}

async function measureCold(options: ColdOptions, bareSharp: BareSharpProcess): Promise<ColdRow[]> {
  const { servers, rounds } = options;
  const allPids = (): number[] => servers.flatMap((s) => [...s.cpuPids()]);
  const samples = new Map<
    string,
    {
      ms: number[];
      cpuMs: number[];
      originMs: number[];
      transformMs: number[];
      totalMs: number[];
      bytes: number;
      errors: number;
    }
  >();
  const sample = (name: string) => {
    let entry = samples.get(name);
    if (!entry)
      samples.set(
        name,
        (entry = { ms: [], cpuMs: [], originMs: [], transformMs: [], totalMs: [], bytes: 0, errors: 0 }),
      );
    return entry;
  };
  // Warm-up: JIT, code paths and libvips in every process, on originals nobody measures.
  for (let w = 1; w <= options.warmupRequests; w++) {
    for (const server of servers) await timedGet(server.urlFor(options.fileFor(server.name, -w)));
    await bareSharp.run({ format: "webp" });
  }
  const vipsOut = join(options.tempDir, "vips-out.webp");
  const vipsArgs = [options.originalPath, "-s", "1280", "-o", `${vipsOut}[Q=80]`];
  timeCommand(vipsArgs, options.serverPlacement);

  for (let round = 0; round < rounds; round++) {
    options.progress(`cold transform: round ${round + 1}/${rounds}`);
    const order = servers.map((_, i) => servers[(i + round) % servers.length]!); // rotation keeps every index valid
    for (const server of order) {
      await waitForIdle(allPids(), { sampleMs: 250 });
      const pids = server.cpuPids();
      const cpuBefore = sumCpuSeconds(pids);
      const r = await timedGet(server.urlFor(options.fileFor(server.name, round)));
      const entry = sample(server.name);
      if (r.status !== 200) entry.errors++;
      else {
        entry.ms.push(r.ms);
        entry.cpuMs.push((sumCpuSeconds(pids) - cpuBefore) * 1000);
        const origin = stageMs(r.serverTiming, "origin");
        const transform = stageMs(r.serverTiming, "transform");
        const total = stageMs(r.serverTiming, "total");
        if (origin !== undefined) entry.originMs.push(origin);
        if (transform !== undefined) entry.transformMs.push(transform);
        if (total !== undefined) entry.totalMs.push(total);
        entry.bytes = r.bytes;
      }
    }
    await waitForIdle(allPids(), { sampleMs: 250 });
    const floor = await bareSharp.run({ format: "webp" });
    const bare = sample("bare sharp");
    bare.ms.push(floor.ms);
    bare.bytes = floor.bytes;
    const vips = sample("vipsthumbnail");
    vips.ms.push(timeCommand(vipsArgs, options.serverPlacement));
    vips.bytes = readFileSync(vipsOut).byteLength;
    sample("vipsthumbnail start").ms.push(timeCommand(["--vips-version"], options.serverPlacement));
  }
  const vipsStartMs = median(samples.get("vipsthumbnail start")?.ms ?? []);
  const rows: ColdRow[] = [];
  for (const [name, s] of samples) {
    if (name === "vipsthumbnail start") continue;
    const server = servers.find((x) => x.name === name);
    const row: ColdRow = {
      system: name,
      outputFormat: server?.outputFormat ?? "webp",
      runs: s.ms.length,
      medianMs: median(s.ms),
      minMs: Math.min(...s.ms),
      maxMs: Math.max(...s.ms),
      cpuMsPerRequest: server ? median(s.cpuMs) : undefined,
      outputBytes: s.bytes,
      errors: s.errors,
      peakRssBytes: server ? readPeakRssBytes(server.rssPid) : undefined,
      note:
        name === "bare sharp"
          ? "sharp 0.35 in its own process on the servers' core: rotate, resize, webp q80; no HTTP, no fetch"
          : name === "vipsthumbnail"
            ? `CLI incl. process start; start alone (--vips-version) ${vipsStartMs.toFixed(0)} ms`
            : server?.outputFormat === "jpeg"
              ? "libgd; output is JPEG (image_filter cannot write WebP)"
              : `through HTTP: origin fetch + transform${stagesNote(s.originMs, s.transformMs, s.totalMs)}`,
    };
    rows.push(row);
    if (name === "vipsthumbnail")
      rows.push({
        ...row,
        system: "vipsthumbnail - start",
        medianMs: row.medianMs - vipsStartMs,
        minMs: row.minMs - vipsStartMs,
        maxMs: row.maxMs - vipsStartMs,
        note: "the run minus the median of a no-op start (`vipsthumbnail --vips-version`)",
      });
  }
  return rows;
}

/** A stage's duration from a Server-Timing header (`origin;dur=7.1, transform;dur=160.2, ...`), ms. */
function stageMs(serverTiming: string | undefined, stage: string): number | undefined {
  const match = serverTiming === undefined ? null : new RegExp(`(?:^|,\\s*)${stage};dur=([\\d.]+)`).exec(serverTiming);
  return match ? Number(match[1]) : undefined;
}

/**
 * The server's own split of a cold request (Imagika's Server-Timing), medians: where the time went. `total` is the
 * proxy's time from the parsed request to its response head; the rest of the client's time is the HTTP exchange.
 */
function stagesNote(originMs: readonly number[], transformMs: readonly number[], totalMs: readonly number[]): string {
  if (originMs.length === 0 || transformMs.length === 0) return "";
  const total = totalMs.length === 0 ? "" : `, total ${median(totalMs).toFixed(0)} ms`;
  return `; Server-Timing medians: origin ${median(originMs).toFixed(1)} ms, transform ${median(transformMs).toFixed(0)} ms${total}`;
}

export interface HerdRow {
  readonly system: string;
  readonly concurrency: number;
  /** Herds run, each on its own new variant. */
  readonly runs: number;
  /** Median wall time of the herds, ms. */
  readonly wallMs: number;
  readonly wallsMs: readonly number[];
  /** Over every herd. */
  readonly ok: number;
  readonly errors: number;
  /** Requests the origin saw, the most in any one herd (ipx sends a HEAD and a GET per transform). */
  readonly originRequests: number;
  /** Transforms, the most in any one herd. */
  readonly transforms: number | undefined;
  /** Server CPU of one herd, median, s. */
  readonly serverCpuSeconds: number;
  readonly peakRssBytes: number;
}

/** Requests in the warm-up herd each system gets first (ipx transforms every one of them). */
const WARM_HERD = 20;

/**
 * Scenario 4: `concurrency` simultaneous requests for one new variant per system, over connections opened just
 * before (a CDN keeps such a pool), counting what reached the origin and how many transforms ran. A small herd on
 * another new variant (`warmFile`) goes first, so the measured one runs on compiled code, as in a server that has been
 * up for a while. The connections are opened after the wait for idle servers: Imagika closes keep-alive connections
 * idle for 5 s, and a herd that had to reconnect measured 200 TCP handshakes (in one run, 0.3 s of proxy CPU instead
 * of 0.16 s). The requests go out through RawConnection, a client as lean as wrk, since the client shares its core with
 * the origin (see raw-client.ts). One herd per entry of `files`, each a never-seen original; the row reports the
 * median wall time, since one herd is one sample of a noisy machine (Imagika's single herds ranged 1.02x-1.37x of
 * the cold median across full runs 8-9).
 */
export async function runHerd(
  server: TransformServer,
  files: readonly string[],
  warmFile: string,
  concurrency: number,
  originRequestCount: () => number,
  allPids: () => number[],
): Promise<HerdRow> {
  const warmers = await openConnections(server.warmUrl, Math.min(WARM_HERD, concurrency));
  await getOnEach(warmers, server.urlFor(warmFile), DEFAULT_ACCEPT);
  for (const c of warmers) c.close();
  const walls: number[] = [];
  const cpus: number[] = [];
  let ok = 0;
  let originRequests = 0;
  let transforms: number | undefined = 0;
  for (const file of files) {
    await waitForIdle(allPids(), { timeoutMs: 120_000 });
    const connections = await openConnections(server.warmUrl, concurrency);
    await getOnEach(connections, server.warmUrl, DEFAULT_ACCEPT);
    const originBefore = originRequestCount();
    const transformsBefore = await server.transformCount?.();
    const cpuBefore = sumCpuSeconds(server.cpuPids());
    const started = performance.now();
    const results = await getOnEach(connections, server.urlFor(file), DEFAULT_ACCEPT);
    walls.push(performance.now() - started);
    const cpuAtEnd = sumCpuSeconds(server.cpuPids());
    for (const c of connections) c.close();
    const transformsAfter = await server.transformCount?.();
    // ipx keeps working on what it queued; wait until it is done before the next herd (and count its CPU).
    await waitForIdle(allPids(), { timeoutMs: 120_000 });
    cpus.push(Math.max(cpuAtEnd, sumCpuSeconds(server.cpuPids())) - cpuBefore);
    ok += results.filter((r) => r.status === 200).length;
    originRequests = Math.max(originRequests, originRequestCount() - originBefore);
    transforms =
      transforms === undefined || transformsBefore === undefined || transformsAfter === undefined
        ? undefined
        : Math.max(transforms, transformsAfter - transformsBefore);
  }
  return {
    system: server.name,
    concurrency,
    runs: files.length,
    wallMs: median(walls),
    wallsMs: walls,
    ok,
    errors: concurrency * files.length - ok,
    originRequests,
    transforms,
    serverCpuSeconds: median(cpus),
    peakRssBytes: readPeakRssBytes(server.rssPid),
  };
}
