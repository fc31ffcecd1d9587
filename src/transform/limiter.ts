import { performance } from "node:perf_hooks";
import { ProxyError } from "../errors.ts";

interface Waiter {
  readonly weight: number;
  readonly start: () => void;
}

/** A job's duration counts 1/8 into the running average used for Retry-After: recent load, not history. */
const DURATION_SMOOTHING = 1 / 8;
const MAX_RETRY_AFTER_SECONDS = 60;

/**
 * Bounds concurrent sharp jobs: `concurrency` weight units run at once, up to `queue` jobs wait in FIFO order, and
 * anything beyond is refused at once with OVERLOADED (a fast 503 beats a slow timeout and keeps memory bounded).
 *
 *   run() ──► slots free and nobody waiting? ──yes──► start
 *                        │ no
 *                        ▼
 *              queue full? ──yes──► reject OVERLOADED (retryAfterSeconds ≈ queue drain time)
 *                        │ no
 *                        ▼
 *              wait in FIFO; each finished job starts waiters from the head while their weight fits
 *
 * FIFO means a heavy job at the head makes light ones behind it wait: no job starves.
 */
export class TransformLimiter {
  readonly #concurrency: number;
  readonly #maxQueued: number;
  readonly #waiters: Waiter[] = [];
  #weightInUse = 0;
  #running = 0;
  #rejected = 0;
  #averageRunMs = 100;

  constructor(options: { readonly concurrency: number; readonly queue: number }) {
    this.#concurrency = Math.max(1, Math.floor(options.concurrency));
    this.#maxQueued = Math.max(0, Math.floor(options.queue));
  }

  /** Runs work when a slot is free; `weight` (1..concurrency, default 1) is how many slots it holds. */
  run<T>(work: () => Promise<T>, weight = 1): Promise<{ value: T; queueMs: number }> {
    const units = Math.min(this.#concurrency, Math.max(1, Math.ceil(weight)));
    const queuedAt = performance.now();
    const execute = async (): Promise<{ value: T; queueMs: number }> => {
      const startedAt = performance.now();
      this.#weightInUse += units;
      this.#running++;
      try {
        return { value: await work(), queueMs: startedAt - queuedAt };
      } finally {
        this.#weightInUse -= units;
        this.#running--;
        const runMs = performance.now() - startedAt;
        this.#averageRunMs += (runMs - this.#averageRunMs) * DURATION_SMOOTHING;
        this.#startWaiters();
      }
    };
    if (this.#waiters.length === 0 && this.#weightInUse + units <= this.#concurrency) return execute();
    if (this.#waiters.length >= this.#maxQueued) {
      this.#rejected++;
      const retryAfterSeconds = this.#retryAfterSeconds();
      return Promise.reject(
        new ProxyError("OVERLOADED", `Too many transforms in progress; retry in ${retryAfterSeconds} s`, {
          retryAfterSeconds,
        }),
      );
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ weight: units, start: () => void execute().then(resolve, reject) });
    });
  }

  stats(): { inFlight: number; queued: number; rejected: number } {
    return { inFlight: this.#running, queued: this.#waiters.length, rejected: this.#rejected };
  }

  #startWaiters(): void {
    for (;;) {
      const next = this.#waiters[0];
      if (next === undefined || this.#weightInUse + next.weight > this.#concurrency) return;
      this.#waiters.shift();
      next.start();
    }
  }

  /** Time for the queue ahead to drain at the recent job rate, at least 1 s. */
  #retryAfterSeconds(): number {
    const drainMs = ((this.#waiters.length + 1) * this.#averageRunMs) / this.#concurrency;
    return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(drainMs / 1000)));
  }
}
