import type { MemoryCache } from "../cache/memory-cache.ts";
import type { TieredCache } from "../cache/tiered-cache.ts";
import type { Variant } from "../cache/tier.ts";
import type { Produced } from "./image-proxy.ts";
import type { ShouldStore } from "./purge-fence.ts";
import type { SourceRegistry } from "./source-registry.ts";

/** Neither no-store (the origin forbade it) nor made from bytes the origin has since replaced. */
export function isStorable(entry: Variant): boolean {
  return !entry.source.isNoStore && !entry.source.isReplaced;
}

/**
 * The disk and Redis tiers as the flights of originals and of variants use them: an entry read is joined to this
 * process's Source of its path and promoted to memory; a write a purge raced is taken back out.
 */
export class LowerTiers {
  readonly #lower: TieredCache | undefined;
  /** The versions this process knows, shared with the originals (which set them) and purges (which forget them). */
  readonly #sources: SourceRegistry;

  constructor(lower: TieredCache | undefined, sources: SourceRegistry) {
    this.#lower = lower;
    this.#sources = sources;
  }

  /**
   * An entry from a lower tier, joined to this process's Source of its path (see #adopt), and promoted to memory.
   * Undefined on a miss, and for an entry of another version than the one this process knows (deleted: a
   * variant of replaced bytes, written by an instance that had not heard of the change yet).
   */
  async hit(key: string, path: string, memory: MemoryCache, shouldStore: ShouldStore): Promise<Produced | undefined> {
    const lower = this.#lower;
    if (!lower) return undefined;
    const hit = await lower.get(key, shouldStore);
    if (!hit) return undefined;
    const entry = this.#adopt(path, hit.variant);
    if (!entry) {
      void lower.delete(key);
      return undefined;
    }
    if (shouldStore()) memory.set(key, entry);
    return { variant: entry, timings: {}, hitTier: hit.tier };
  }

  /** Writes to the lower tiers; `isStored` is false when a purge won the race (the entry is then taken out again). */
  async store(
    key: string,
    entry: Variant,
    shouldStore: ShouldStore,
  ): Promise<{ isStored: boolean; isShared: boolean }> {
    const lower = this.#lower;
    if (!lower) return { isStored: false, isShared: false };
    const written = await lower.set(key, entry);
    if (shouldStore()) return written;
    // A purge arrived while the entry was being written. This instance's own purges catch such writes (the disk
    // tier cancels them, Redis runs the SET before the purge's SCAN), but another instance's SCAN may have passed
    // the key before our SET landed: take the entry back out.
    await lower.delete(key);
    return { isStored: false, isShared: false };
  }

  /**
   * `entry` (read from a lower tier) with its Source replaced by the process's one for its path when they are the
   * same version, so that revalidating or replacing one reaches it too; a later deadline stored with it (another
   * instance revalidated) carries over. Undefined when the versions differ. The first of a path registers its own.
   */
  #adopt(path: string, entry: Variant): Variant | undefined {
    const stored = entry.source;
    const known = this.#sources.get(path);
    if (!known) {
      if (stored.etag !== "") this.#sources.set(path, stored); // "": a variant from before issue 20, version unknown
      return entry;
    }
    if (known.etag !== stored.etag) return undefined;
    if (stored.freshUntilMs > known.freshUntilMs) {
      known.freshUntilMs = stored.freshUntilMs;
      known.lifetimeMs = stored.lifetimeMs;
      known.validators = stored.validators;
      known.failedAtMs = undefined;
    }
    return { ...entry, source: known };
  }
}
