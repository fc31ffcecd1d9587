import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** Kernel clock ticks per second, the unit of utime/stime in /proc/<pid>/stat (100 on every Linux we run). */
export const CLOCK_TICKS_PER_SECOND = readClockTicks();

function readClockTicks(): number {
  try {
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

/** Fields of /proc/<pid>/stat after the `(comm)` field, which may itself contain spaces and parentheses. */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/**
 * CPU seconds (user + system, every thread) a process has used so far. Resolution is one clock tick (10 ms), so a
 * delta over a run of 100k+ requests is accurate to well under 1%.
 */
export function readCpuSeconds(pid: number): number {
  const fields = statFields(pid);
  // After "(comm) ": state is field 3 of proc(5), so utime (field 14) is index 11 and stime (field 15) index 12.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/**
 * CPU seconds of every thread of the processes, from /proc/<pid>/task/<tid>/schedstat (nanoseconds of run time):
 * for short measurements, where readCpuSeconds' 10 ms clock ticks would round a few requests' work to 0 or 10 ms.
 * Threads that ended meanwhile are not counted, so keep the measured window free of thread exits.
 */
export function sumTaskCpuSeconds(pids: readonly number[]): number {
  let totalNs = 0;
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // exited
    }
    for (const tid of tids) {
      try {
        totalNs += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // the thread exited between the listing and the read
      }
    }
  }
  return totalNs / 1e9;
}

function readStatusKiB(pid: number, key: "VmHWM" | "VmRSS"): number {
  const match = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match?.[1] === undefined ? 0 : Number(match[1]);
}

/** Peak resident set size (VmHWM) since the process started, in bytes. */
export function readPeakRssBytes(pid: number): number {
  return readStatusKiB(pid, "VmHWM") * 1024;
}

/** Direct children of `pid`, found by scanning /proc for a matching parent pid. */
export function findChildPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (Number(statFields(Number(entry))[1]) === pid) children.push(Number(entry));
    } catch {
      // the process exited while we looked
    }
  }
  return children;
}

/** The process's command line as `ps` shows it (nginx renames its processes: "nginx: worker process"). */
export function readCommandLine(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
}

/** CPU seconds of several processes together; one that has exited counts 0 (callers pass long-lived ones). */
export function sumCpuSeconds(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) {
    try {
      sum += readCpuSeconds(pid);
    } catch {
      // exited
    }
  }
  return sum;
}

/**
 * Waits until the processes together use less than `maxCoreShare` of one core over a `sampleMs` window (twice in a
 * row), so one run's tail (closing sockets, GC, log flushing) is not billed to the next. Returns the ms waited.
 */
export async function waitForIdle(
  pids: readonly number[],
  { maxCoreShare = 0.05, sampleMs = 500, timeoutMs = 15_000 } = {},
): Promise<number> {
  const started = performance.now();
  let quietSamples = 0;
  let before = sumCpuSeconds(pids);
  while (performance.now() - started < timeoutMs) {
    await sleep(sampleMs);
    const now = sumCpuSeconds(pids);
    quietSamples = (now - before) / (sampleMs / 1000) < maxCoreShare ? quietSamples + 1 : 0;
    before = now;
    if (quietSamples >= 2) break;
  }
  return Math.round(performance.now() - started);
}

export interface CoreTimes {
  /** Clock ticks the core spent on anything but idle and iowait (user, nice, system, irq, softirq, steal). */
  readonly busyTicks: number;
  readonly totalTicks: number;
}

/** One core's counters from /proc/stat, to see how busy the server's core was, with whatever else ran there. */
export function readCoreTimes(core: number): CoreTimes {
  const line = readFileSync("/proc/stat", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`cpu${core} `));
  if (line === undefined) throw new Error(`/proc/stat has no cpu${core} line`);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busyTicks = user + nice + system + irq + softirq + steal;
  return { busyTicks, totalTicks: busyTicks + idle + iowait };
}

/** Busy share (0-1) of a core between two readings. */
export function busyShare(before: CoreTimes, after: CoreTimes): number {
  const total = after.totalTicks - before.totalTicks;
  return total > 0 ? (after.busyTicks - before.busyTicks) / total : 0;
}
