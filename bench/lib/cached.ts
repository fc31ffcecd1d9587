import { busyShare, readCoreTimes, readPeakRssBytes, sumCpuSeconds, waitForIdle } from "./proc.ts";
import { isContended, otherWorkShare } from "./report.ts";
import type { Measurement, SystemName } from "./report.ts";
import type { Placement } from "./placement.ts";
import { runWrk } from "./wrk.ts";

/** A server measured with wrk. */
export interface CachedServer {
  readonly name: SystemName;
  /** The URL of a file (or, for ipx, of a repeated variant) on this server. */
  urlFor(fileName: string): string;
  /** Every process whose CPU counts (nginx: master + worker + cache manager; Varnish: manager + cache child). */
  cpuPids(): readonly number[];
  /** Processes whose peak RSS is summed (nginx: the worker; Varnish: the cache child; --workers: every worker). */
  rssPids(): readonly number[];
  /** True when a response came from the cache (X-Cache: HIT, or Varnish's two-id X-Varnish). */
  isHit(res: Response): boolean;
}

/** GETs `url` up to 3 times and insists a later answer is a complete cache hit. */
export async function checkCacheHit(server: CachedServer, fileName: string, bytes: number): Promise<void> {
  const url = server.urlFor(fileName);
  for (let attempt = 1; attempt <= 3; attempt++) {
    const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    const body = await res.arrayBuffer();
    if (res.status !== 200 || body.byteLength !== bytes)
      throw new Error(`${server.name}: GET ${url} gave ${res.status} with ${body.byteLength} of ${bytes} bytes`);
    if (attempt > 1 && server.isHit(res)) return;
  }
  throw new Error(`${server.name}: ${url} is not served from its cache after 3 requests`);
}

export interface WrkRunOptions {
  readonly fixture: string;
  readonly fileName: string;
  readonly round: number;
  readonly durationSeconds: number;
  readonly threads: number;
  readonly connections: number;
  readonly loadPlacement: Placement;
  /** The core whose /proc/stat busy time is compared with the server's own CPU (contention); undefined = unpinned. */
  readonly serverCore: number | undefined;
  /** Every server's pids: the run waits until all of them are idle (ipx keeps transforming after its load stops). */
  readonly idlePids: readonly number[];
  readonly label: string;
  /** waitForIdle's sample window (2 quiet samples in a row count as idle); quick runs use 250. */
  readonly idleSampleMs?: number;
  /** Collects wrk's raw output (for bench/results/raw/). */
  readonly outputs?: string[];
}

const pct = (n: number): string => `${(n * 100).toFixed(0)}%`;

/** One wrk run against one server, with the server's CPU, its core's busy time and wrk's own CPU. */
export async function measureWrkRun(server: CachedServer, o: WrkRunOptions): Promise<Measurement> {
  const idleMs = await waitForIdle(o.idlePids, { timeoutMs: 60_000, sampleMs: o.idleSampleMs ?? 500 });
  process.stdout.write(`${o.label} ${o.durationSeconds} s ...`);
  const pids = server.cpuPids();
  const cpuBefore = sumCpuSeconds(pids);
  const coreBefore = o.serverCore === undefined ? undefined : readCoreTimes(o.serverCore);
  const wrk = await runWrk({
    url: server.urlFor(o.fileName),
    threads: o.threads,
    connections: o.connections,
    durationSeconds: o.durationSeconds,
    placement: o.loadPlacement,
  });
  const serverCpuSeconds = sumCpuSeconds(pids) - cpuBefore;
  o.outputs?.push(`# ${o.label.trim()}\n${wrk.output}`);
  const serverCoreBusyShare =
    coreBefore && o.serverCore !== undefined ? busyShare(coreBefore, readCoreTimes(o.serverCore)) : undefined;
  const m: Measurement = {
    system: server.name,
    fixture: o.fixture,
    round: o.round,
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
    peakRssBytes: server.rssPids().reduce((sum, pid) => {
      try {
        return sum + readPeakRssBytes(pid);
      } catch {
        return sum;
      }
    }, 0),
    loadGeneratorCoreShare: wrk.loadGeneratorCoreShare,
  };
  console.log(
    ` ${Math.round(m.requestsPerSecond).toLocaleString("en-US").padStart(7)} req/s  ${m.megabytesPerSecond.toFixed(0).padStart(5)} MB/s  p50 ${m.p50Ms.toFixed(2)} ms  p99 ${m.p99Ms.toFixed(2)} ms  ${m.cpuMicrosPerRequest.toFixed(1)} µs/req  server ${pct(m.serverCoreShare)} of a core${m.serverCoreBusyShare === undefined ? "" : ` (core ${o.serverCore} ${pct(m.serverCoreBusyShare)} busy)`}  wrk ${pct(m.loadGeneratorCoreShare)}  ${m.errors} errors${idleMs > 1500 ? `  (waited ${(idleMs / 1000).toFixed(1)} s for idle)` : ""}${isContended(m) ? `  CONTENDED: other work took ${pct(otherWorkShare(m))} of core ${o.serverCore}` : ""}${o.serverCore !== undefined && m.loadGeneratorCoreShare > 0.9 ? "  WRK-BOUND" : ""}`,
  );
  return m;
}
