export interface TokenBucketOptions {
  /** Tokens added per second (sustained requests per second). */
  readonly perSecond: number;
  /** Bucket capacity (burst). */
  readonly burst: number;
  /** Distinct clients tracked at once; beyond it the longest-tracked client is forgotten (its bucket counts as full). */
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
 * indistinguishable from a missing one, so a sweep (at most once per refill period, on the request path, no timer)
 * drops those and memory stays bounded; `maxClients` caps it under an address-rotation flood. A plain Map: one
 * lookup per request, where lru-cache's TTL bookkeeping cost a get and a set.
 */
export class TokenBucketLimiter {
  readonly perSecond: number;
  readonly burst: number;
  readonly #now: () => number;
  readonly #maxClients: number;
  readonly #refillMs: number;
  readonly #buckets = new Map<string, Bucket>();
  #nextSweepMs: number;

  constructor(options: TokenBucketOptions) {
    this.perSecond = options.perSecond;
    this.burst = options.burst;
    this.#now = options.now ?? (() => performance.now());
    this.#maxClients = options.maxClients ?? 100_000;
    this.#refillMs = Math.max(1, (options.burst / options.perSecond) * 1000);
    this.#nextSweepMs = this.#now() + this.#refillMs;
  }

  take(clientKey: string): RateDecision {
    const now = this.#now();
    if (now >= this.#nextSweepMs) this.#sweep(now);
    let bucket = this.#buckets.get(clientKey);
    if (bucket) {
      bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.updatedMs) / 1000) * this.perSecond);
      bucket.updatedMs = now;
    } else {
      if (this.#buckets.size >= this.#maxClients) {
        const oldest = this.#buckets.keys().next();
        if (!oldest.done) this.#buckets.delete(oldest.value);
      }
      bucket = { tokens: this.burst, updatedMs: now };
      this.#buckets.set(clientKey, bucket);
    }
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
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

  /** Forgets buckets that have refilled completely since their last use. */
  #sweep(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (now - bucket.updatedMs >= this.#refillMs) this.#buckets.delete(key);
    }
    this.#nextSweepMs = now + this.#refillMs;
  }
}
