/** One run of `produce` that callers share; a purge can abandon it. */
export interface Flight {
  /**
   * Set by abandon(): a purge began while this ran, so its result may predate the purge. The callers already waiting
   * still get it, but it must not be stored anywhere (it would undo the purge) and no new caller can join it.
   */
  readonly isAbandoned: boolean;
}

interface Running<T> {
  readonly promise: Promise<T>;
  readonly flight: { isAbandoned: boolean };
}

/**
 * Single-flight: concurrent callers for one key share one in-flight promise, so N simultaneous misses cost one
 * origin fetch and one transform. A rejection reaches every waiter and nothing is remembered afterwards.
 */
export class Coalescer<T> {
  readonly #inflight = new Map<string, Running<T>>();

  /** Runs `produce` unless a call for `key` is already running; `joined` tells whether this caller piggybacked. */
  run(key: string, produce: (flight: Flight) => Promise<T>): { promise: Promise<T>; joined: boolean } {
    const pending = this.#inflight.get(key);
    if (pending) return { promise: pending.promise, joined: true };
    const flight = { isAbandoned: false };
    const promise = produce(flight).finally(() => {
      // Only this run's entry: after abandon() a newer run may hold the key.
      if (this.#inflight.get(key)?.flight === flight) this.#inflight.delete(key);
    });
    this.#inflight.set(key, { promise, flight });
    return { promise, joined: false };
  }

  /** Marks every run whose key matches as abandoned and forgets it, so the next caller starts afresh; how many. */
  abandon(matches: (key: string) => boolean): number {
    let count = 0;
    for (const [key, running] of this.#inflight) {
      if (!matches(key)) continue;
      running.flight.isAbandoned = true;
      this.#inflight.delete(key);
      count++;
    }
    return count;
  }

  get size(): number {
    return this.#inflight.size;
  }
}
