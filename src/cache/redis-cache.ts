import { keyMatcherOf, originalKey } from "./cache-key.ts";
import type { PurgeScope } from "./cache-key.ts";
import { decodeEntry, encodeEntry } from "./entry-codec.ts";
import type { RedisConnection } from "./redis-connection.ts";
import type { Variant } from "./tier.ts";
import type { TierHealth } from "./tier-health.ts";

export interface RedisCacheOptions {
  readonly client: RedisConnection;
  /** Prepended to every key (`imagika:`), so tests and tenants can share one Redis. */
  readonly keyPrefix: string;
  /** Encoded entries above this are not shared (Redis memory and the time one GET may take). */
  readonly maxEntryBytes: number;
  /** Freshness of entries written before issue 20 (which carry none of their own); 0 = until evicted. */
  readonly ttlSeconds: number;
  /**
   * How long past its freshness an entry is kept (to be served stale or revalidated): its PX. An entry fresh until
   * evicted gets no expiry (Redis maxmemory-policy allkeys-lru then decides).
   */
  readonly retainStaleSeconds?: number;
  readonly health: TierHealth;
  /** The proxy's clock in epoch ms (freshness deadlines are on it); tests inject it. */
  readonly now?: () => number;
}

export interface RedisCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly writes: number;
  readonly bytesWritten: number;
  /** Entries not shared because they exceeded --redis-max-entry-bytes. */
  readonly tooLarge: number;
  readonly failures: number;
  readonly isHealthy: boolean;
}

/**
 * Shared tier: one Redis string per entry, `<prefix>c:<cache key>`, holding the same verified bytes as a disk file
 * (entry-codec.ts: header, metadata, body), with a TTL. Every failure is a miss: Redis can only make requests faster.
 */
export class RedisCache {
  readonly name = "redis";
  readonly isShared = true;
  readonly #client: RedisConnection;
  readonly #prefix: string;
  readonly #maxEntryBytes: number;
  readonly #ttlMs: number;
  readonly #retainStaleMs: number;
  readonly #health: TierHealth;
  readonly #now: () => number;
  #hits = 0;
  #misses = 0;
  #writes = 0;
  #bytesWritten = 0;
  #tooLarge = 0;

  constructor(options: RedisCacheOptions) {
    this.#client = options.client;
    this.#prefix = `${options.keyPrefix}c:`;
    this.#maxEntryBytes = options.maxEntryBytes;
    this.#ttlMs = options.ttlSeconds * 1000;
    this.#retainStaleMs = (options.retainStaleSeconds ?? 0) * 1000;
    this.#health = options.health;
    this.#now = options.now ?? Date.now;
  }

  async get(key: string): Promise<Variant | undefined> {
    if (!this.#health.isAvailable()) return undefined;
    let bytes: Buffer | null;
    try {
      bytes = await this.#client.getBuffer(this.#prefix + key);
      this.#health.succeed();
    } catch (error) {
      this.#health.fail(error);
      return undefined;
    }
    const entry = bytes === null ? undefined : decodeEntry(bytes, key, this.#ttlMs);
    if (!entry) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    return entry.variant;
  }

  /** True when the entry is now in Redis for every instance to read. */
  async set(key: string, variant: Variant): Promise<boolean> {
    if (!this.#health.isAvailable()) return false;
    const now = this.#now();
    const keepMs = variant.source.freshUntilMs + this.#retainStaleMs - now;
    if (keepMs < 1) return false; // past what would be kept: it would only be deleted again
    const bytes = encodeEntry(key, variant, now);
    if (bytes.length > this.#maxEntryBytes) {
      this.#tooLarge++;
      return false;
    }
    try {
      await this.#client.set(this.#prefix + key, bytes, Number.isFinite(keepMs) ? { pxMs: Math.ceil(keepMs) } : {});
      this.#health.succeed();
    } catch (error) {
      this.#health.fail(error);
      return false;
    }
    this.#writes++;
    this.#bytesWritten += bytes.length;
    return true;
  }

  async delete(key: string): Promise<void> {
    if (!this.#health.isAvailable()) return;
    try {
      await this.#client.unlink([this.#prefix + key]);
      this.#health.succeed();
    } catch (error) {
      this.#health.fail(error);
    }
  }

  /**
   * Deletes what `scope` names (SCAN of every master, so O(keys in Redis): admin purges only). The glob narrows the
   * scan; the key matcher decides, since a glob cannot tell `v:q?<options>` from `v:q?x.jpg?<options>`.
   */
  async purge(scope: PurgeScope): Promise<number> {
    const prefix = escapeGlob(this.#prefix);
    switch (scope.kind) {
      case "all":
        return this.#unlinkMatching(`${prefix}*`, () => true, []);
      case "path":
        return this.#unlinkMatching(`${prefix}${escapeGlob(`v:${scope.path}?`)}*`, keyMatcherOf(scope), [
          this.#prefix + originalKey(scope.path),
        ]);
      case "prefix":
        return this.#unlinkMatching(`${prefix}[ov]:${escapeGlob(scope.prefix)}*`, keyMatcherOf(scope), []);
      case "variants":
        return this.#unlinkMatching(`${prefix}${escapeGlob(`v:${scope.path}?`)}*`, keyMatcherOf(scope), []);
    }
  }

  stats(): RedisCacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      writes: this.#writes,
      bytesWritten: this.#bytesWritten,
      tooLarge: this.#tooLarge,
      failures: this.#health.failures,
      isHealthy: this.#health.isHealthy,
    };
  }

  async #unlinkMatching(pattern: string, matches: (key: string) => boolean, exact: string[]): Promise<number> {
    if (!this.#health.isAvailable()) return 0;
    try {
      let removed = exact.length > 0 ? await this.#client.unlink(exact) : 0;
      for await (const keys of this.#client.scanKeys(pattern)) {
        const mine = keys.filter((key) => matches(key.slice(this.#prefix.length)));
        if (mine.length > 0) removed += await this.#client.unlink(mine);
      }
      this.#health.succeed();
      return removed;
    } catch (error) {
      this.#health.fail(error);
      return 0;
    }
  }
}

/** Escapes Redis glob metacharacters so a path is matched literally. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}
