import { keyMatcherOf } from "../cache/cache-key.ts";
import type { PurgeScope } from "../cache/cache-key.ts";
import type { Flight } from "./coalesce.ts";

/**
 * Checked right before every store of a flight's result (memory, lower tiers, promotions, the negative cache): false
 * once a purge of its key began after the flight did, or was under way when it started. Its result may then predate
 * the purge, and storing it would undo the purge.
 */
export type ShouldStore = () => boolean;

/** Work in flight by key, which a purge abandons: the proxy's Coalescers, and the ClusterCoalescer's locks. */
interface Flights {
  abandon(matches: (key: string) => boolean): unknown;
}

/**
 * The purge fence: while a purge runs, and for the flights that were running when it began, nothing is stored (see
 * ShouldStore). Purges go through fenced(); every flight gets its ShouldStore from shouldStoreFor().
 */
export class PurgeFence {
  /** Key matchers of the purges under way (usually none). */
  readonly #purges = new Set<(key: string) => boolean>();
  /** Abandoned in this order: the originals' flights, the variants' flights, the cluster's locks. */
  readonly #flights: readonly (Flights | undefined)[];

  constructor(flights: readonly (Flights | undefined)[]) {
    this.#flights = flights;
  }

  /**
   * Runs `purge` so that no work racing it can store a result from before it (see ShouldStore):
   *
   * ```text
   * flight A ──────────────────────────┤ done: answers its waiters, stores nothing (abandoned at ①)
   * purge           ① abandon ···· tiers, memory ···· ② abandon
   * flight B               ├──────────────────────────┤ started during the purge: stores nothing (abandoned at ②)
   * request            ├ joins A?  no: A left the in-flight map at ①; a request after ② starts a flight C
   * ```
   * Purges are rare, so that a few flights around one do their work again costs little.
   */
  async fenced<T>(scope: PurgeScope, purge: () => Promise<T>): Promise<T> {
    const matches = keyMatcherOf(scope);
    this.#purges.add(matches);
    this.#abandonFlights(matches);
    try {
      return await purge();
    } finally {
      this.#purges.delete(matches);
      this.#abandonFlights(matches);
    }
  }

  /** The flight's ShouldStore; it remembers whether the flight began while a purge of its key was under way. */
  shouldStoreFor(key: string, flight: Flight): ShouldStore {
    let isBornInPurge = false;
    for (const matches of this.#purges) isBornInPurge ||= matches(key);
    return isBornInPurge ? () => false : () => !flight.isAbandoned;
  }

  #abandonFlights(matches: (key: string) => boolean): void {
    for (const flights of this.#flights) flights?.abandon(matches);
  }
}
