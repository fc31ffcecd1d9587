import { setTimeout as sleep } from "node:timers/promises";
import { spawnTracked } from "./children.ts";
import { placeCommand } from "./placement.ts";
import type { Placement } from "./placement.ts";
import { readCpuSeconds } from "./proc.ts";

export interface WrkOptions {
  readonly url: string;
  readonly threads: number;
  readonly connections: number;
  readonly durationSeconds: number;
  readonly placement: Placement;
}

export interface WrkResult {
  readonly requests: number;
  readonly durationSeconds: number;
  readonly requestsPerSecond: number;
  readonly bytesRead: number;
  readonly latencyMs: { readonly p50: number; readonly p75: number; readonly p90: number; readonly p99: number };
  readonly socketErrors: {
    readonly connect: number;
    readonly read: number;
    readonly write: number;
    readonly timeout: number;
  };
  /** Responses with status >= 400 (wrk's "Non-2xx or 3xx responses"). */
  readonly non2xx: number;
  /** non2xx plus every socket error. */
  readonly errors: number;
}

export interface WrkRun extends WrkResult {
  /** Share of one core wrk itself used (its threads summed); near 1 × its pinned cores means wrk was the limit. */
  readonly loadGeneratorCoreShare: number;
  readonly output: string;
}

const TIME_UNITS_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** wrk prints sizes in binary units (its format_binary divides by 1024). */
const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

function toMs(value: string, unit: string): number {
  const scale = TIME_UNITS_MS[unit];
  if (scale === undefined) throw new Error(`wrk: unknown time unit '${unit}'`);
  return Number(value) * scale;
}

/** Parses the human output of `wrk --latency` (wrk 4.x). Throws when a line it needs is missing. */
export function parseWrkOutput(output: string): WrkResult {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)(B|KB|MB|GB|TB) read/.exec(output);
  if (!total) throw new Error(`wrk: no "N requests in T" line in:\n${output}`);
  const [, requests, duration, durationUnit, read, readUnit] = total as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const percentile = (p: number): number => {
    const match = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, "m").exec(output);
    if (!match?.[1] || !match[2]) throw new Error(`wrk: no ${p}% latency line (was --latency passed?)`);
    return toMs(match[1], match[2]);
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = {
    connect: Number(socket?.[1] ?? 0),
    read: Number(socket?.[2] ?? 0),
    write: Number(socket?.[3] ?? 0),
    timeout: Number(socket?.[4] ?? 0),
  };
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  const durationSeconds = toMs(duration, durationUnit) / 1000;
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(output)?.[1];
  return {
    requests: Number(requests),
    durationSeconds,
    requestsPerSecond: rate === undefined ? Number(requests) / durationSeconds : Number(rate),
    bytesRead: Math.round(Number(read) * (SIZE_UNITS[readUnit] ?? 1)),
    latencyMs: { p50: percentile(50), p75: percentile(75), p90: percentile(90), p99: percentile(99) },
    socketErrors,
    non2xx,
    errors: non2xx + socketErrors.connect + socketErrors.read + socketErrors.write + socketErrors.timeout,
  };
}

/** Runs `[taskset -c <cpus>] wrk -t -c -d --latency <url>`; killed if it outlives its duration by 20 s. */
export async function runWrk(options: WrkOptions): Promise<WrkRun> {
  const wrkArgs = [
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${options.durationSeconds}s`,
    "--latency",
    options.url,
  ];
  const [command, args] = placeCommand("wrk", wrkArgs, options.placement);
  const child = spawnTracked(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let errorOutput = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (errorOutput += chunk));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => resolve(code));
  });
  const killTimer = setTimeout(() => child.kill("SIGKILL"), (options.durationSeconds + 20) * 1000);

  // wrk's own CPU, sampled until it exits (nice and taskset exec wrk, so the pid is wrk's): tells whether wrk was the limit.
  const started = performance.now();
  let wrkCpuSeconds = 0;
  let sampledAtMs = started;
  let isDone = false;
  const sampling = (async () => {
    while (!isDone && child.pid !== undefined) {
      try {
        wrkCpuSeconds = readCpuSeconds(child.pid);
        sampledAtMs = performance.now();
      } catch {
        return;
      }
      await sleep(200);
    }
  })();
  const code = await exited;
  isDone = true;
  clearTimeout(killTimer);
  await sampling;
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${errorOutput || output}`);
  const result = parseWrkOutput(output);
  const sampledSeconds = (sampledAtMs - started) / 1000;
  return {
    ...result,
    loadGeneratorCoreShare: sampledSeconds > 0 ? wrkCpuSeconds / sampledSeconds : 0,
    output,
  };
}
