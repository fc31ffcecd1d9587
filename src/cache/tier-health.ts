/** The slice of a pino logger a tier needs (cache/ does not import log). */
export interface TierLogger {
  warn(object: object, message: string): void;
  info(object: object, message: string): void;
}

export interface TierHealthOptions {
  readonly tier: string;
  readonly log: TierLogger;
  /** First pause after a failure; doubles per failed retry up to maxBackoffMs. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly now?: () => number;
}

/**
 * Failure episodes of one tier (Redis down, disk full). The first failure logs one `warn` and opens an episode; while
 * it lasts the tier is skipped (a miss, no waiting) except for one probe per backoff period (100 ms doubling to 5 s),
 * and the first success logs `info` and closes it. Every failure is counted for imagika_tier_failures_total.
 */
export class TierHealth {
  readonly tier: string;
  failures = 0;
  readonly #log: TierLogger;
  readonly #minBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #now: () => number;
  #downSinceMs: number | undefined;
  #backoffMs: number;
  #retryAtMs = 0;

  constructor(options: TierHealthOptions) {
    this.tier = options.tier;
    this.#log = options.log;
    this.#minBackoffMs = options.minBackoffMs ?? 100;
    this.#maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.#backoffMs = this.#minBackoffMs;
    this.#now = options.now ?? (() => performance.now());
  }

  get isHealthy(): boolean {
    return this.#downSinceMs === undefined;
  }

  /** False while a failure episode waits for its next probe: callers treat the tier as a miss without calling it. */
  isAvailable(): boolean {
    return this.#downSinceMs === undefined || this.#now() >= this.#retryAtMs;
  }

  fail(error: unknown): void {
    this.failures++;
    const now = this.#now();
    if (this.#downSinceMs === undefined) {
      this.#downSinceMs = now;
      this.#backoffMs = this.#minBackoffMs;
      this.#log.warn(
        { tier: this.tier, err: error instanceof Error ? error.message : String(error) },
        "cache tier failing: treated as a miss until it recovers",
      );
    } else {
      this.#backoffMs = Math.min(this.#backoffMs * 2, this.#maxBackoffMs);
    }
    this.#retryAtMs = now + this.#backoffMs;
  }

  succeed(): void {
    if (this.#downSinceMs === undefined) return;
    this.#log.info(
      { tier: this.tier, downMs: Math.round(this.#now() - this.#downSinceMs), failures: this.failures },
      "cache tier recovered",
    );
    this.#downSinceMs = undefined;
  }
}
