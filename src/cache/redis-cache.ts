import { createClient, RESP_TYPES } from "redis";
import { keyMatcherOf, originalKey } from "./cache-key.ts";
import type { PurgeScope } from "./cache-key.ts";
import { decodeEntry, encodeEntry } from "./entry-codec.ts";
import type { Variant } from "./tier.ts";
import type { TierHealth, TierLogger } from "./tier-health.ts";

/**
 * Longest a Redis command may take before it counts as a failure. Loopback or same-zone round trips take ~0.1-1 ms and
 * a 1 MB value ~2-5 ms; 250 ms only fires when Redis is stalled or gone, and bounds what it can add to a request.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 250;

/**
 * A node-redis client that never stalls a request: commands fail at once while disconnected (no offline queue) and
 * after REDIS_COMMAND_TIMEOUT_MS otherwise, and it reconnects in the background (100 ms doubling to 2 s). It is not
 * awaited: the proxy starts and serves while Redis is still down.
 */
export function createRedisConnection(url: string, log: TierLogger) {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    commandOptions: { timeout: REDIS_COMMAND_TIMEOUT_MS },
    socket: {
      connectTimeout: 1000,
      reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2000),
    },
  });
  let isDown = false;
  client.on("error", (error: unknown) => {
    if (isDown) return; // one line per outage; TierHealth counts the failed commands
    isDown = true;
    log.warn({ err: error instanceof Error ? error.message : String(error) }, "redis connection lost; reconnecting");
  });
  client.on("ready", () => {
    if (isDown) log.info({}, "redis connection back");
    isDown = false;
  });
  client.connect().catch(() => undefined); // keeps retrying by itself; errors arrive on "error"
  return client;
}

export type RedisClient = ReturnType<typeof createRedisConnection>;

export interface RedisCacheOptions {
  readonly client: RedisClient;
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
  readonly #client: RedisClient;
  readonly #buffers;
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
    this.#buffers = options.client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
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
      bytes = await this.#buffers.get(this.#prefix + key);
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
      await this.#client.set(
        this.#prefix + key,
        bytes,
        Number.isFinite(keepMs) ? { expiration: { type: "PX", value: Math.ceil(keepMs) } } : undefined,
      );
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
      await this.#client.unlink(this.#prefix + key);
      this.#health.succeed();
    } catch (error) {
      this.#health.fail(error);
    }
  }

  /**
   * Deletes what `scope` names (SCAN, so O(keys in Redis): admin purges only). The glob narrows the scan; the key
   * matcher decides, since a glob cannot tell `v:q?<options>` from `v:q?x.jpg?<options>`.
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
      for await (const keys of this.#client.scanIterator({ MATCH: pattern, COUNT: 500 })) {
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

/** Quits politely when connected; otherwise drops the socket and stops reconnecting (close() would wait). */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.isReady) await client.close().catch(() => client.destroy());
  else if (client.isOpen) client.destroy();
}
