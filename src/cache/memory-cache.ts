import { LRUCache } from "lru-cache";
import type { CacheTier, Variant } from "./tier.ts";

/** Bytes charged per entry on top of its body: key, metadata and LRU bookkeeping (measured ≈ 200-300 B). */
export const ENTRY_OVERHEAD_BYTES = 256;

export interface MemoryCacheOptions {
  readonly name: string;
  readonly maxBytes: number;
  /** Entries larger than this (body + overhead) are served but not stored. */
  readonly maxEntryBytes: number;
  readonly ttlSeconds: number;
  /** Injected clock in ms (tests); defaults to performance.now. */
  readonly now?: () => number;
  /** Called after an entry was stored: the process-wide memory budget may trim the caches to its room. */
  readonly onGrow?: () => void;
}

export interface MemoryCacheStats {
  readonly entries: number;
  readonly bytes: number;
  readonly maxBytes: number;
  readonly evictions: number;
}

/** Size charged for one entry: what `bytes` in stats adds up. */
export function entrySize(key: string, variant: Variant): number {
  return variant.body.byteLength + key.length + ENTRY_OVERHEAD_BYTES;
}

/**
 * Byte-bounded LRU on lru-cache (maxSize + sizeCalculation): it evicts from the cold end until a new entry fits,
 * and its calculatedSize is updated synchronously inside set/delete, so accounting cannot drift under concurrent
 * requests (JS runs each set to completion). Measured against a hand-written typed-array LRU it was within noise
 * for our entry counts (thousands, not millions), so the maintained library wins.
 */
export class MemoryCache implements CacheTier {
  readonly name: string;
  readonly #lru: LRUCache<string, Variant> | undefined;
  readonly #maxBytes: number;
  readonly #onGrow: (() => void) | undefined;
  #evictions = 0;

  constructor(options: MemoryCacheOptions) {
    this.name = options.name;
    this.#maxBytes = options.maxBytes;
    this.#onGrow = options.onGrow;
    if (options.maxBytes <= 0) return; // a zero budget disables the tier
    const perf = options.now ? { now: options.now } : undefined;
    this.#lru = new LRUCache<string, Variant>({
      maxSize: options.maxBytes,
      maxEntrySize: Math.min(options.maxEntryBytes, options.maxBytes),
      sizeCalculation: (variant, key) => entrySize(key, variant),
      ttl: options.ttlSeconds * 1000,
      ttlResolution: options.now ? 0 : 1,
      ...(perf ? { perf } : {}),
      updateAgeOnGet: false,
      dispose: (_value, _key, reason) => {
        if (reason === "evict") this.#evictions++;
      },
    });
  }

  get(key: string): Variant | undefined {
    return this.#lru?.get(key);
  }

  /** Stores unless the entry exceeds the per-entry cap (then it is simply not kept); true when stored. */
  set(key: string, variant: Variant): boolean {
    if (!this.#lru) return false;
    this.#lru.set(key, variant);
    if (!this.#lru.has(key)) return false; // lru-cache refuses an entry over maxEntrySize without a word
    this.#onGrow?.();
    return this.#lru.has(key); // the memory budget may have had to trim it at once
  }

  /** Evicts least-recently-used entries until the cache holds at most `maxBytes` (the memory budget shrinks it). */
  trimTo(maxBytes: number): void {
    const lru = this.#lru;
    if (!lru) return;
    while (lru.calculatedSize > Math.max(0, maxBytes) && lru.size > 0) lru.pop();
  }

  has(key: string): boolean {
    return this.#lru?.has(key) ?? false;
  }

  delete(key: string): void {
    this.#lru?.delete(key);
  }

  /** Deletes every key for which `matches` is true; returns how many. O(entries): admin purges only. */
  deleteWhere(matches: (key: string) => boolean): number {
    if (!this.#lru) return 0;
    const doomed: string[] = [];
    for (const key of this.#lru.keys()) if (matches(key)) doomed.push(key);
    for (const key of doomed) this.#lru.delete(key);
    return doomed.length;
  }

  clear(): number {
    const count = this.#lru?.size ?? 0;
    this.#lru?.clear();
    return count;
  }

  /** Keys from most to least recently used (tests and purge). */
  keys(): string[] {
    return this.#lru ? [...this.#lru.keys()] : [];
  }

  /** Sum of entrySize over stored entries, recomputed from scratch (tests check it against stats().bytes). */
  recount(): number {
    let total = 0;
    if (this.#lru) for (const [key, variant] of this.#lru.entries()) total += entrySize(key, variant);
    return total;
  }

  stats(): MemoryCacheStats {
    return {
      entries: this.#lru?.size ?? 0,
      bytes: this.#lru?.calculatedSize ?? 0,
      maxBytes: this.#maxBytes,
      evictions: this.#evictions,
    };
  }
}
