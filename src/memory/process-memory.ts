import { readFileSync } from "node:fs";
import type { Config } from "../config/config.ts";
import { BASELINE_BYTES, MARGIN_SHARE } from "../config/memory.ts";
import { MemoryBudget } from "./memory-budget.ts";

/** RSS is read this often to measure the overhead the budget cannot account (process.memoryUsage.rss(): ~2 µs). */
export const MEMORY_SAMPLE_MS = 200;
/** Longest a transform or download waits for memory before its request is answered 503. */
const MEMORY_MAX_WAIT_MS = 10_000;

/** The process-wide memory budget (issue 18): --memory-limit shared by the caches and in-flight work. */
export function createProcessMemoryBudget(config: Config): MemoryBudget {
  const gc = (globalThis as { gc?: () => void }).gc; // present when started with --expose-gc (bin/imagika.js)
  return new MemoryBudget({
    limitBytes: config.memory.limitBytes,
    marginBytes: Math.floor(config.memory.limitBytes * MARGIN_SHARE),
    baselineBytes: process.memoryUsage.rss(),
    plannedBaselineBytes: BASELINE_BYTES,
    // A quarter of the cache survives any burst of work, so hits keep coming while cold work waits.
    cacheFloorBytes: Math.floor(config.cache.maxBytes / 4),
    cacheMaxBytes: config.cache.maxBytes,
    readRss: () => process.memoryUsage.rss(),
    collectGarbage: gc,
    maxWaiters: config.transform.queue,
    maxWaitMs: MEMORY_MAX_WAIT_MS,
  });
}

/** Which allocator this process runs on, for the start-up log line (bin/imagika.js chooses it). */
export function describeAllocator(): string {
  try {
    if (readFileSync("/proc/self/maps", "utf8").includes("libjemalloc")) {
      return `jemalloc (${process.env.MALLOC_CONF ?? "default"})`;
    }
  } catch {
    return "unknown";
  }
  const arenas = process.env.MALLOC_ARENA_MAX;
  return arenas === undefined ? "glibc malloc (untuned)" : `glibc malloc (MALLOC_ARENA_MAX=${arenas})`;
}
