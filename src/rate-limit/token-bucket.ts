import { LRUCache } from "lru-cache";

export interface TokenBucketOptions {
  /** Tokens added per second (sustained requests per second). */
  readonly perSecond: number;
  /** Bucket capacity (burst). */
  readonly burst: number;
  /** Distinct clients tracked at once; the least recently seen are forgotten first (a forgotten bucket is full). */
  readonly maxClients?: number;
  /** Injected clock in ms. */
  readonly now?: () => number;
}

export interface RateDecision {
  readonly allowed: boolean;
  /** Whole tokens left after this request. */
  readonly remaining: number;
  /** Seconds until the bucket is full again (RateLimit `t`). */
  readonly resetSeconds: number;
  /** Seconds until one token is available (Retry-After when refused). */
  readonly retryAfterSeconds: number;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

/**
 * Per-client token buckets in memory: refill `perSecond`, capacity `burst`. A bucket idle long enough to be full is
 * indistinguishable from a missing one, so entries expire after one full refill time and memory stays bounded.
 */
export class TokenBucketLimiter {
  readonly perSecond: number;
  readonly burst: number;
  readonly #now: () => number;
  readonly #buckets: LRUCache<string, Bucket>;

  constructor(options: TokenBucketOptions) {
    this.perSecond = options.perSecond;
    this.burst = options.burst;
    this.#now = options.now ?? (() => performance.now());
    const refillMs = Math.ceil((options.burst / options.perSecond) * 1000);
    this.#buckets = new LRUCache<string, Bucket>({
      max: options.maxClients ?? 100_000,
      ttl: Math.max(1, refillMs),
      ttlResolution: options.now ? 0 : 1,
      perf: { now: this.#now },
      updateAgeOnGet: false,
    });
  }

  take(clientKey: string): RateDecision {
    const now = this.#now();
    let bucket = this.#buckets.get(clientKey);
    if (bucket) {
      bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.updatedMs) / 1000) * this.perSecond);
      bucket.updatedMs = now;
    } else {
      bucket = { tokens: this.burst, updatedMs: now };
    }
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    this.#buckets.set(clientKey, bucket); // refreshes the TTL: the entry lives until the bucket would be full
    const missing = this.burst - bucket.tokens;
    return {
      allowed,
      remaining: Math.floor(bucket.tokens),
      resetSeconds: Math.ceil(missing / this.perSecond),
      retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((1 - bucket.tokens) / this.perSecond)),
    };
  }

  /** Clients currently tracked (for tests and stats). */
  get size(): number {
    return this.#buckets.size;
  }
}
