import { readFileSync } from "node:fs";
import { join } from "node:path";

const MiB = 1024 * 1024;

/**
 * RSS of a proxy before its first request, allowed for when the limit is split into cache and work: measured 105-115
 * MiB with glibc, ~160 MiB with jemalloc preloaded (its arenas are reserved up front), on Node 20 with tsx and sharp.
 */
export const BASELINE_BYTES = 128 * MiB;
/** Kept free of any accounting: allocator slack and thread stacks. A share of the limit. */
export const MARGIN_SHARE = 0.1;
/**
 * Room for in-flight work that a limit must leave besides the cache: a 4K original (3 MB) turned into a 2400 px AVIF
 * measured 86.5 MiB at its peak, a sideways-stored portrait 200 MiB (src/transform/working-set.ts).
 */
export const MIN_WORK_BYTES = 128 * MiB;
/** With no limit and no cgroup: the cache budget the limit is derived from. */
export const DEFAULT_CACHE_BYTES = 512 * MiB;
/** Share of a container's memory limit the process takes when no --memory-limit is given. */
export const CGROUP_SHARE = 0.9;
/** With only a limit: the share of what is left after baseline and margin that the cache gets (the rest: work). */
export const CACHE_SHARE = 0.5;
/** A cgroup limit at or above this is "no limit" (v1 reports 2^63 rounded to pages; v2 "max"). */
const UNLIMITED = 2 ** 60;

export interface MemoryPlan {
  readonly limitBytes: number;
  readonly cacheMaxBytes: number;
  /** Where the limit came from, for the start-up log line. */
  readonly source: "flag" | "cgroup" | "cache";
}

/**
 * The process's memory limit and cache budget, per worker. `memoryLimit`/`cacheMaxBytes` are undefined when not
 * given. Returns the problem as a sentence when both are given and the cache cannot fit.
 */
export function planMemory(input: {
  readonly memoryLimit: number | undefined;
  readonly cacheMaxBytes: number | undefined;
  readonly cgroupLimit: number | undefined;
  readonly workers: number;
}): MemoryPlan | { problem: string } {
  const processes = Math.max(1, input.workers);
  let limit: number;
  let source: MemoryPlan["source"];
  if (input.memoryLimit !== undefined) {
    limit = input.memoryLimit / processes;
    source = "flag";
  } else if (input.cgroupLimit !== undefined) {
    limit = (input.cgroupLimit * CGROUP_SHARE) / processes;
    source = "cgroup";
  } else {
    const cache = input.cacheMaxBytes ?? DEFAULT_CACHE_BYTES;
    limit = (cache + BASELINE_BYTES + MIN_WORK_BYTES) / (1 - MARGIN_SHARE);
    return { limitBytes: Math.ceil(limit), cacheMaxBytes: cache, source: "cache" };
  }
  limit = Math.floor(limit);
  const cacheRoom = Math.floor(limit * (1 - MARGIN_SHARE) - BASELINE_BYTES - MIN_WORK_BYTES);
  if (input.cacheMaxBytes === undefined) {
    if (cacheRoom < 0) return { problem: tooSmall(limit, processes) };
    const usable = limit * (1 - MARGIN_SHARE) - BASELINE_BYTES;
    return { limitBytes: limit, cacheMaxBytes: Math.max(0, Math.floor(usable * CACHE_SHARE)), source };
  }
  if (input.cacheMaxBytes > cacheRoom) {
    if (cacheRoom < 0) return { problem: tooSmall(limit, processes) };
    return {
      problem:
        `--cache-max-bytes ${mib(input.cacheMaxBytes)} MiB does not fit in a memory limit of ${mib(limit)} MiB` +
        `${processes > 1 ? ` per worker` : ""}: the process needs ~${mib(BASELINE_BYTES)} MiB to run, ` +
        `${mib(MIN_WORK_BYTES)} MiB for transforms and ${MARGIN_SHARE * 100}% slack, so the cache may use at most ` +
        `${mib(cacheRoom)} MiB (lower --cache-max-bytes or raise --memory-limit)`,
    };
  }
  return { limitBytes: limit, cacheMaxBytes: input.cacheMaxBytes, source };
}

function tooSmall(limit: number, processes: number): string {
  const least = Math.ceil((BASELINE_BYTES + MIN_WORK_BYTES) / (1 - MARGIN_SHARE));
  return (
    `a memory limit of ${mib(limit)} MiB${processes > 1 ? " per worker" : ""} is too small: ` +
    `Imagika needs at least ${Math.ceil(least / MiB)} MiB per process (its baseline and one large transform)`
  );
}

function mib(bytes: number): string {
  return (bytes / MiB).toFixed(0);
}

/**
 * The memory limit of the cgroup this process runs in (a container's limit), or undefined when there is none.
 * cgroup v2: `memory.max` of the process's group (or of the namespace root, as containers see it); v1:
 * `memory.limit_in_bytes` of the memory controller's group.
 */
export function readCgroupMemoryLimit(root = "/sys/fs/cgroup", procSelf = "/proc/self/cgroup"): number | undefined {
  let groups: string[];
  try {
    groups = readFileSync(procSelf, "utf8").split("\n");
  } catch {
    return undefined;
  }
  const candidates: string[] = [];
  for (const line of groups) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined || controllers === undefined) continue;
    if (controllers === "") candidates.push(join(root, path, "memory.max"), join(root, "memory.max"));
    else if (controllers.split(",").includes("memory")) {
      candidates.push(
        join(root, "memory", path, "memory.limit_in_bytes"),
        join(root, "memory", "memory.limit_in_bytes"),
      );
    }
  }
  for (const file of candidates) {
    let text: string;
    try {
      text = readFileSync(file, "utf8").trim();
    } catch {
      continue;
    }
    if (text === "max") return undefined;
    const value = Number(text);
    if (Number.isFinite(value) && value > 0) return value >= UNLIMITED ? undefined : value;
  }
  return undefined;
}
