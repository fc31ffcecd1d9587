import { ENTRY_OVERHEAD_BYTES } from "../../src/cache/memory-cache.ts";

/** mulberry32: seeded, so the same seed gives the same trace on every machine. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `length` item indices in [0, items), Zipf-distributed with exponent `s` over a seeded random ranking (so the most
 * popular variant is not always the first original at the smallest width).
 */
export function zipfTrace(items: number, length: number, s: number, seed: number): number[] {
  const random = createRandom(seed);
  const ranking = Array.from({ length: items }, (_, i) => i);
  for (let i = items - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [ranking[i], ranking[j]] = [ranking[j]!, ranking[i]!]; // both indices are in range
  }
  const cdf: number[] = [];
  let total = 0;
  for (let k = 1; k <= items; k++) cdf.push((total += 1 / k ** s));
  const trace: number[] = [];
  for (let n = 0; n < length; n++) {
    const u = random() * total;
    let lo = 0;
    let hi = items - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u)
        lo = mid + 1; // mid < items
      else hi = mid;
    }
    trace.push(ranking[lo]!);
  }
  return trace;
}

/** What Imagika charges its memory LRU for one variant: body + key + ENTRY_OVERHEAD_BYTES. */
export function chargedBytes(bodyBytes: number, key: string): number {
  return bodyBytes + key.length + ENTRY_OVERHEAD_BYTES;
}

/**
 * Hit ratio of an ideal byte-bounded LRU over `trace` (sequential, no concurrency): a hit moves the item to the
 * most-recent end; a miss inserts it and evicts from the least-recent end until the total fits `budgetBytes`.
 * Items larger than the budget are never stored.
 */
export function simulateLru(trace: readonly number[], sizes: ReadonlyMap<number, number>, budgetBytes: number) {
  const lru = new Map<number, number>(); // insertion order = recency
  let used = 0;
  let hits = 0;
  for (const item of trace) {
    const size = sizes.get(item) ?? 0;
    if (lru.has(item)) {
      hits++;
      lru.delete(item);
      lru.set(item, size);
      continue;
    }
    if (size > budgetBytes) continue;
    for (const [oldest, oldSize] of lru) {
      if (used + size <= budgetBytes) break;
      lru.delete(oldest);
      used -= oldSize;
    }
    lru.set(item, size);
    used += size;
  }
  return { hits, requests: trace.length, hitRatio: trace.length === 0 ? 0 : hits / trace.length };
}

/** One replayed request: when it started and ended (ms from the replay's start) and how it was answered. */
export interface ReplayEvent {
  readonly item: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly outcome: "hit" | "collapsed" | "stored" | "error";
}

/**
 * The same byte-bounded LRU, driven by what happened under concurrency: each request looks up at its start, and a
 * miss that produced its variant ("stored") inserts it when it finished. A cache that is a true LRU should match
 * Imagika's strict hit count closely; the gap to the sequential simulation is what concurrency costs (requests that
 * arrive while their variant is still being made cannot hit, they collapse onto the transform in flight).
 */
export function simulateLruOnEvents(
  events: readonly ReplayEvent[],
  sizes: ReadonlyMap<number, number>,
  budgetBytes: number,
) {
  type Step = { readonly atMs: number; readonly item: number; readonly isInsert: boolean };
  const steps: Step[] = [];
  for (const e of events) {
    if (e.outcome === "error") continue;
    steps.push({ atMs: e.startMs, item: e.item, isInsert: false });
    if (e.outcome === "stored") steps.push({ atMs: e.endMs, item: e.item, isInsert: true });
  }
  steps.sort((a, b) => a.atMs - b.atMs || Number(a.isInsert) - Number(b.isInsert));
  const lru = new Map<number, number>();
  let used = 0;
  let hits = 0;
  let lookups = 0;
  for (const step of steps) {
    const size = sizes.get(step.item) ?? 0;
    if (!step.isInsert) {
      lookups++;
      if (lru.has(step.item)) {
        hits++;
        lru.delete(step.item);
        lru.set(step.item, size);
      }
      continue;
    }
    if (lru.has(step.item) || size > budgetBytes) continue;
    for (const [oldest, oldSize] of lru) {
      if (used + size <= budgetBytes) break;
      lru.delete(oldest);
      used -= oldSize;
    }
    lru.set(step.item, size);
    used += size;
  }
  return { hits, requests: lookups, hitRatio: lookups === 0 ? 0 : hits / lookups };
}

export interface StatsSnapshot {
  readonly requests: number;
  readonly hits: number;
  readonly misses: number;
  readonly coalesced: number;
  readonly originFetches: number;
  readonly transforms: number;
  readonly cache: { readonly bytes: number };
}

export async function readStats(baseUrl: string): Promise<StatsSnapshot> {
  const res = await fetch(`${baseUrl}/api/stats`);
  return (await res.json()) as StatsSnapshot;
}

export interface Window {
  readonly endSeconds: number;
  readonly requests: number;
  readonly hitRatio: number;
  /** 1 - origin fetches / requests in the window: the share of requests the origin did not see. */
  readonly originOffload: number;
  readonly cacheBytes: number;
}

export interface ReplayResult {
  readonly issued: number;
  readonly completed: number;
  readonly seconds: number;
  readonly hits: number;
  /** MISS answers that waited for another request's transform (Cache-Status: collapsed): no work of their own. */
  readonly collapsed: number;
  readonly errors: number;
  readonly originFetches: number;
  readonly transforms: number;
  readonly windows: readonly Window[];
  /** Observed body size per item (for the LRU simulation). */
  readonly bodyBytes: ReadonlyMap<number, number>;
  readonly events: readonly ReplayEvent[];
}

/**
 * Replays `trace` against `baseUrl` with `clients` concurrent clients (each takes the next request when its last one
 * finished), for at most `maxSeconds`; every `windowSeconds` it reads /api/stats and records that window's deltas.
 */
export async function replayTrace(options: {
  readonly baseUrl: string;
  readonly trace: readonly number[];
  readonly pathFor: (item: number) => string;
  readonly clients: number;
  readonly maxSeconds: number;
  readonly windowSeconds: number;
  readonly onWindow?: (w: Window, done: number) => void;
}): Promise<ReplayResult> {
  const { trace } = options;
  const bodyBytes = new Map<number, number>();
  const events: ReplayEvent[] = [];
  let next = 0;
  let completed = 0;
  let hits = 0;
  let collapsed = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + options.maxSeconds * 1000;
  const first = await readStats(options.baseUrl);
  const windows: Window[] = [];
  let previous = first;
  let isDone = false;
  const sampler = (async () => {
    while (!isDone) {
      await new Promise((resolve) => setTimeout(resolve, options.windowSeconds * 1000));
      const now = await readStats(options.baseUrl);
      const requests = now.hits + now.misses - (previous.hits + previous.misses);
      const w: Window = {
        endSeconds: (performance.now() - started) / 1000,
        requests,
        hitRatio: requests > 0 ? (now.hits - previous.hits) / requests : 0,
        originOffload: requests > 0 ? 1 - (now.originFetches - previous.originFetches) / requests : 0,
        cacheBytes: now.cache.bytes,
      };
      windows.push(w);
      options.onWindow?.(w, completed);
      previous = now;
    }
  })();
  const client = async (): Promise<void> => {
    while (next < trace.length && performance.now() < deadline) {
      const item = trace[next++]!; // next < trace.length was just checked
      const startMs = performance.now() - started;
      let outcome: ReplayEvent["outcome"] = "error";
      try {
        const res = await fetch(`${options.baseUrl}${options.pathFor(item)}`);
        const body = await res.arrayBuffer();
        if (res.status !== 200) errors++;
        else {
          bodyBytes.set(item, body.byteLength);
          if (res.headers.get("x-cache") === "HIT") {
            hits++;
            outcome = "hit";
          } else if (res.headers.get("cache-status")?.includes("collapsed")) {
            collapsed++;
            outcome = "collapsed";
          } else outcome = "stored";
        }
      } catch {
        errors++;
      }
      events.push({ item, startMs, endMs: performance.now() - started, outcome });
      completed++;
    }
  };
  await Promise.all(Array.from({ length: options.clients }, client));
  const seconds = (performance.now() - started) / 1000;
  isDone = true;
  await sampler;
  const last = await readStats(options.baseUrl);
  return {
    issued: next,
    completed,
    seconds,
    hits,
    collapsed,
    errors,
    originFetches: last.originFetches - first.originFetches,
    transforms: last.transforms - first.transforms,
    windows,
    bodyBytes,
    events,
  };
}
