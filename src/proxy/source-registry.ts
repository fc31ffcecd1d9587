import type { Source } from "../cache/source.ts";

/**
 * The current Source (version) of each path this process knows: what a variant read from disk or Redis is joined to,
 * and what a fetch compares its bytes with to see that the origin changed them. Held weakly: a path's Source lives
 * as long as some entry in memory (or a request in flight) uses it, so the registry is bounded by the memory caches
 * and needs no eviction of its own. Not on the hot path: a memory hit reads its entry's Source directly.
 */
export class SourceRegistry {
  readonly #byPath = new Map<string, WeakRef<Source>>();
  /** Drops a path's slot once its Source is collected, unless a newer Source took the slot meanwhile. */
  readonly #cleanup = new FinalizationRegistry<string>((path) => {
    if (this.#byPath.get(path)?.deref() === undefined) this.#byPath.delete(path);
  });

  get(path: string): Source | undefined {
    return this.#byPath.get(path)?.deref();
  }

  set(path: string, source: Source): void {
    this.#byPath.set(path, new WeakRef(source));
    this.#cleanup.register(source, path);
  }

  /** Forgets every path for which `matches` is true (purges). */
  deleteWhere(matches: (path: string) => boolean): void {
    for (const path of [...this.#byPath.keys()]) if (matches(path)) this.#byPath.delete(path);
  }

  get size(): number {
    return this.#byPath.size;
  }
}
