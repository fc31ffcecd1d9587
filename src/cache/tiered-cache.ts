import type { PurgeScope } from "./cache-key.ts";
import type { Variant } from "./tier.ts";

/** A tier below memory: asynchronous, and it never throws (a failure is a miss and a `false`). */
export interface LowerTier {
  readonly name: string;
  /** Shared by every instance (Redis), as opposed to local to this host (disk). */
  readonly isShared: boolean;
  get(key: string): Promise<Variant | undefined>;
  /** True when the entry was stored. */
  set(key: string, variant: Variant): Promise<boolean>;
  delete(key: string): Promise<void>;
  /** Deletes what `scope` names; returns how many entries. */
  purge(scope: PurgeScope): Promise<number>;
}

export interface LowerHit {
  readonly variant: Variant;
  readonly tier: string;
}

/**
 * The tiers under the memory LRUs, in lookup order (disk, then Redis). Memory stays outside so that a memory hit
 * costs no promise: ImageProxy checks its MemoryCache synchronously and only comes here on a miss.
 *
 * ```text
 * get:  memory ─miss→ disk ─miss→ redis ─miss→ origin
 *         ↑ promote     ↑ promote   │ hit
 *         └─────────────┴───────────┘
 * set:  memory + every lower tier
 * ```
 */
export class TieredCache {
  readonly tiers: readonly LowerTier[];

  constructor(tiers: readonly LowerTier[]) {
    this.tiers = tiers;
  }

  /**
   * The first hit, copied into the tiers above it (without waiting for those writes) while `shouldPromote()` holds:
   * the caller says false once a purge began during the lookup, since the hit may be what the purge is deleting.
   */
  async get(key: string, shouldPromote: () => boolean = () => true): Promise<LowerHit | undefined> {
    for (let i = 0; i < this.tiers.length; i++) {
      const tier = this.tiers[i]!; // i < length
      const variant = await tier.get(key);
      if (!variant) continue;
      if (shouldPromote()) for (let j = 0; j < i; j++) void this.tiers[j]!.set(key, variant); // j < i; never rejects
      return { variant, tier: tier.name };
    }
    return undefined;
  }

  /**
   * Writes to every tier. `isStored`: some tier now holds the entry; `isShared`: a shared one does (other instances
   * can read it).
   */
  async set(key: string, variant: Variant): Promise<{ isStored: boolean; isShared: boolean }> {
    const stored = await Promise.all(this.tiers.map((tier) => tier.set(key, variant)));
    return {
      isStored: stored.includes(true),
      isShared: this.tiers.some((tier, i) => tier.isShared && stored[i] === true),
    };
  }

  async delete(key: string): Promise<void> {
    await Promise.all(this.tiers.map((tier) => tier.delete(key)));
  }

  /** `isLocalOnly`: skip shared tiers (a purge another instance announced has already emptied them). */
  async purge(scope: PurgeScope, isLocalOnly = false): Promise<number> {
    let removed = 0;
    for (const tier of this.tiers) if (!(isLocalOnly && tier.isShared)) removed += await tier.purge(scope);
    return removed;
  }
}
