import { performance } from "node:perf_hooks";
import { ProxyError } from "../errors.ts";

interface Waiter {
  readonly weight: number;
  readonly start: () => void;
}

/** A job's duration counts 1/8 into the running average used for Retry-After: recent load, not history. */
const DURATION_SMOOTHING = 1 / 8;
const MAX_RETRY_AFTER_SECONDS = 60;

/** A limiter's slice of config; `name` is the plural noun its refusals use ("transforms", "origin fetches"). */
export interface WorkLimiterOptions {
  readonly name: string;
  readonly concurrency: number;
  readonly queue: number;
}

/**
 * Bounds concurrent jobs (sharp transforms, origin downloads): `concurrency` weight units run at once, up to `queue`
 * jobs wait in FIFO order, and anything beyond is refused at once with OVERLOADED (a fast 503 beats a slow timeout and
 * keeps memory bounded).
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
export class WorkLimiter {
  readonly #name: string;
  readonly #concurrency: number;
  readonly #maxQueued: number;
  readonly #waiters: Waiter[] = [];
  #weightInUse = 0;
  #running = 0;
  #rejected = 0;
  #averageRunMs = 100;

  constructor(options: WorkLimiterOptions) {
    this.#name = options.name;
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
        new ProxyError("OVERLOADED", `Too many ${this.#name} waiting; retry in ${retryAfterSeconds} s`, {
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
