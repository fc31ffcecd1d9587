/**
 * Single-flight: concurrent callers for one key share one in-flight promise, so N simultaneous misses cost one
 * origin fetch and one transform. A rejection reaches every waiter and nothing is remembered afterwards.
 */
export class Coalescer<T> {
  readonly #inflight = new Map<string, Promise<T>>();

  /** Runs `produce` unless a call for `key` is already running; `joined` tells whether this caller piggybacked. */
  run(key: string, produce: () => Promise<T>): { promise: Promise<T>; joined: boolean } {
    const pending = this.#inflight.get(key);
    if (pending) return { promise: pending, joined: true };
    const promise = produce().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, promise);
    return { promise, joined: false };
  }

  get size(): number {
    return this.#inflight.size;
  }
}
