import { ProxyError } from "../errors.ts";

/**
 * One byte budget for the whole process (issue 18): `--memory-limit` is what the process's RSS must stay under, and
 * everything large it holds is charged to it: the memory caches (their own exact byte accounting) and in-flight
 * work (originals being downloaded, the working set of each transform, estimated before any decode).
 *
 *   limit ─┬─ margin (allocator slack that no accounting sees)
 *          ├─ overhead: RSS that is not cache or in-flight work (start-up RSS, V8 heap, garbage Buffers awaiting a
 *          │  collection). Measured: max(start-up RSS, RSS − accounted bytes) over the last few seconds
 *          ├─ in flight: leases taken by downloads and transforms
 *          └─ caches: whatever is left, down to a floor; the caches are trimmed (LRU first) when work needs room
 *
 * Work asks for a lease before it starts (`tryReserve`); when it does not fit even with the caches at their floor,
 * the caller queues (transform and origin limiters) and in the end sheds with 503. Work that can never fit (a lease
 * larger than the limit minus overhead) is refused with 413 at once.
 */
export interface ShrinkableCache {
  /** Bytes the cache holds now. */
  bytes(): number;
  /** Evicts least-recently-used entries until it holds at most `maxBytes`. */
  trimTo(maxBytes: number): void;
  /** Share of the cache room this cache may use (originals vs variants). */
  readonly share: number;
}

export interface MemoryBudgetOptions {
  readonly limitBytes: number;
  /** Kept free for what no accounting sees (allocator slack, thread stacks): a fraction of the limit. */
  readonly marginBytes: number;
  /** RSS at start-up, before any request: the least the overhead can be. */
  readonly baselineBytes: number;
  /**
   * The baseline the limit was planned with (config/memory.ts BASELINE_BYTES): what "could never fit" is judged
   * against, so a process that starts large (an embedder, a test runner holding other apps) refuses only work that
   * is larger than any proxy could hold, and otherwise runs it alone.
   */
  readonly plannedBaselineBytes: number;
  /** The caches may be trimmed down to this many bytes in total to make room for in-flight work. */
  readonly cacheFloorBytes: number;
  /** The configured cache budget: the caches never hold more, whatever room there is. */
  readonly cacheMaxBytes: number;
  /** Resident set size of the process now (process.memoryUsage.rss; injected in tests). */
  readonly readRss: () => number;
  /** Runs a full garbage collection when the process was started with --expose-gc; absent otherwise. */
  readonly collectGarbage?: (() => void) | undefined;
  /** Work waiting for memory at most; beyond, new work is refused at once (503 OVERLOADED). */
  readonly maxWaiters: number;
  /** Longest wait for memory before a request is refused (503 OVERLOADED with Retry-After). */
  readonly maxWaitMs: number;
  readonly now?: () => number;
}

interface Waiter {
  readonly bytes: number;
  readonly grant: (lease: Lease) => void;
  readonly refuse: (error: unknown) => void;
  readonly timer: NodeJS.Timeout;
}

export interface Lease {
  readonly bytes: number;
  /** Changes what the lease holds (a download learns its real size); never waits, may push the caches down. */
  resize(bytes: number): void;
  /** Idempotent. */
  release(): void;
}

export interface MemoryStats {
  readonly limitBytes: number;
  readonly rssBytes: number;
  readonly peakRssBytes: number;
  readonly cacheBytes: number;
  /** Room the caches may use now (shrinks while in-flight work needs memory). */
  readonly cacheRoomBytes: number;
  /** The caches are never trimmed below this for in-flight work. */
  readonly cacheFloorBytes: number;
  readonly reservedBytes: number;
  readonly overheadBytes: number;
  readonly leases: number;
  /** Work waiting for memory now. */
  readonly waiting: number;
  /** Requests refused with 503 because their work did not fit in memory. */
  readonly shed: number;
  /** Requests refused with 413 because their work could never fit. */
  readonly tooLarge: number;
}

/** How long a measured overhead is remembered: long enough to span a burst's garbage, short enough to recover. */
const OVERHEAD_WINDOW_MS = 5_000;
/** Full collections forced when RSS nears the limit, at most this often (each costs ~5-20 ms with a small heap). */
const MIN_GC_INTERVAL_MS = 1_000;

export class MemoryBudget {
  readonly #options: MemoryBudgetOptions;
  readonly #caches: ShrinkableCache[] = [];
  readonly #waiters: Waiter[] = [];
  readonly #now: () => number;
  #reserved = 0;
  #leases = 0;
  #shed = 0;
  #tooLarge = 0;
  #rss: number;
  #peakRss: number;
  /** Overhead samples (time, bytes) within OVERHEAD_WINDOW_MS; their maximum is the overhead. */
  #overheadSamples: { atMs: number; bytes: number }[] = [];
  #overhead: number;
  #lastGcAtMs = -Infinity;

  constructor(options: MemoryBudgetOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    this.#rss = options.readRss();
    this.#peakRss = this.#rss;
    this.#overhead = options.baselineBytes;
  }

  /** The memory caches the budget may trim (originals, variants). */
  addCache(cache: ShrinkableCache): void {
    this.#caches.push(cache);
  }

  get limitBytes(): number {
    return this.#options.limitBytes;
  }

  /** Bytes for caches and in-flight work together. */
  #usable(): number {
    return this.#options.limitBytes - this.#options.marginBytes - this.#overhead;
  }

  #cacheBytes(): number {
    let total = 0;
    for (const cache of this.#caches) total += cache.bytes();
    return total;
  }

  /** Could work of this size ever run, with nothing else in flight and the caches at their floor? */
  canEverFit(bytes: number): boolean {
    return (
      bytes <=
      this.#options.limitBytes -
        this.#options.marginBytes -
        Math.min(this.#options.baselineBytes, this.#options.plannedBaselineBytes) -
        this.#options.cacheFloorBytes
    );
  }

  /**
   * A lease of `bytes` if it fits now, trimming the caches (never below their floor) to make room; undefined when it
   * does not (admit() queues it). Throws SOURCE_TOO_LARGE when it never could.
   */
  tryReserve(bytes: number): Lease | undefined {
    if (!this.canEverFit(bytes)) {
      this.#tooLarge++;
      throw new ProxyError(
        "SOURCE_TOO_LARGE",
        `This image needs about ${mib(bytes)} MiB to process, more than the ${mib(this.#options.limitBytes)} MiB memory limit allows`,
      );
    }
    const room = this.#usable() - this.#reserved;
    const cacheFloor = Math.min(this.#options.cacheFloorBytes, this.#cacheBytes());
    if (bytes > room - cacheFloor && this.#reserved > 0) return undefined;
    return this.#lease(bytes);
  }

  /**
   * A lease of `bytes` as soon as it fits: at once when it does, else after work ahead of it (FIFO) has released
   * memory. Refused with OVERLOADED when too many wait or the wait passes maxWaitMs, with SOURCE_TOO_LARGE when it
   * could never fit.
   */
  admit(bytes: number): Promise<Lease> {
    try {
      const lease = this.#waiters.length === 0 ? this.tryReserve(bytes) : undefined;
      if (lease) return Promise.resolve(lease);
      if (!this.canEverFit(bytes)) this.tryReserve(bytes); // throws SOURCE_TOO_LARGE
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    if (this.#waiters.length >= this.#options.maxWaiters) {
      this.#shed++;
      return Promise.reject(this.#overloaded("Too much work is waiting for memory"));
    }
    return new Promise<Lease>((resolve, reject) => {
      const waiter: Waiter = {
        bytes,
        grant: resolve,
        refuse: reject,
        timer: setTimeout(() => {
          const at = this.#waiters.indexOf(waiter);
          if (at >= 0) this.#waiters.splice(at, 1);
          this.#shed++;
          reject(this.#overloaded("The work did not fit in memory in time"));
        }, this.#options.maxWaitMs),
      };
      waiter.timer.unref();
      this.#waiters.push(waiter);
    });
  }

  #overloaded(reason: string): ProxyError {
    const retryAfterSeconds = Math.max(1, Math.ceil(this.#options.maxWaitMs / 2000));
    return new ProxyError(
      "OVERLOADED",
      `${reason} (memory limit ${mib(this.#options.limitBytes)} MiB); retry in ${retryAfterSeconds} s`,
      { retryAfterSeconds },
    );
  }

  /** Starts waiting work from the head while it fits. */
  #pump(): void {
    for (;;) {
      const head = this.#waiters[0];
      if (head === undefined) return;
      const lease = this.tryReserve(head.bytes); // admit() checked canEverFit, so this does not throw
      if (!lease) return;
      this.#waiters.shift();
      clearTimeout(head.timer);
      head.grant(lease);
    }
  }

  /** A lease taken whatever the room (work already under way); the caches make room as far as they can. */
  reserve(bytes: number): Lease {
    return this.#lease(bytes);
  }

  #lease(bytes: number): Lease {
    let held = Math.max(0, Math.ceil(bytes));
    let isReleased = false;
    this.#reserved += held;
    this.#leases++;
    this.#fitCaches();
    return {
      get bytes() {
        return held;
      },
      resize: (next: number) => {
        if (isReleased) return;
        const size = Math.max(0, Math.ceil(next));
        this.#reserved += size - held;
        const isShrink = size < held;
        held = size;
        if (isShrink) this.#notifyFree();
        else this.#fitCaches();
      },
      release: () => {
        if (isReleased) return;
        isReleased = true;
        this.#reserved -= held;
        this.#leases--;
        held = 0;
        this.#notifyFree();
      },
    };
  }

  /** Room the caches may fill now: what in-flight work leaves, never more than the configured cache budget. */
  cacheRoom(): number {
    return Math.max(0, Math.min(this.#options.cacheMaxBytes, this.#usable() - this.#reserved));
  }

  /** Trims the caches to the room left (call after a cache grew). */
  fitCaches(): void {
    this.#fitCaches();
  }

  #fitCaches(): void {
    const room = Math.max(this.cacheRoom(), Math.min(this.#options.cacheFloorBytes, this.#options.cacheMaxBytes));
    if (this.#cacheBytes() <= room) return;
    for (const cache of this.#caches) cache.trimTo(Math.floor(room * cache.share));
  }

  #notifyFree(): void {
    this.#pump();
  }

  /**
   * Reads RSS and updates the measured overhead (call every ~100-250 ms). Near the limit, trims the caches to the
   * new room and, when allowed, forces a collection so garbage Buffers are freed before more work starts.
   */
  sample(): void {
    const now = this.#now();
    const rss = this.#options.readRss();
    this.#rss = rss;
    this.#peakRss = Math.max(this.#peakRss, rss);
    const unaccounted = rss - this.#cacheBytes() - this.#reserved;
    this.#overheadSamples.push({ atMs: now, bytes: unaccounted });
    while (this.#overheadSamples.length > 0 && this.#overheadSamples[0]!.atMs < now - OVERHEAD_WINDOW_MS) {
      this.#overheadSamples.shift(); // length checked
    }
    let overhead = this.#options.baselineBytes;
    for (const sample of this.#overheadSamples) overhead = Math.max(overhead, sample.bytes);
    const grew = overhead > this.#overhead;
    this.#overhead = overhead;
    if (grew) this.#fitCaches();
    else this.#notifyFree();
    const highWater = this.#options.limitBytes - this.#options.marginBytes / 2;
    if (rss > highWater && this.#options.collectGarbage && now - this.#lastGcAtMs >= MIN_GC_INTERVAL_MS) {
      this.#lastGcAtMs = now;
      this.#options.collectGarbage();
    }
  }

  /** Starts sampling RSS every `intervalMs` (unref'd); returns a stop function. */
  startSampling(intervalMs: number): () => void {
    const timer = setInterval(() => this.sample(), intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  stats(): MemoryStats {
    return {
      limitBytes: this.#options.limitBytes,
      rssBytes: this.#rss,
      peakRssBytes: this.#peakRss,
      cacheBytes: this.#cacheBytes(),
      cacheRoomBytes: this.cacheRoom(),
      cacheFloorBytes: this.#options.cacheFloorBytes,
      reservedBytes: this.#reserved,
      overheadBytes: this.#overhead,
      leases: this.#leases,
      waiting: this.#waiters.length,
      shed: this.#shed,
      tooLarge: this.#tooLarge,
    };
  }
}

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(0);
}
