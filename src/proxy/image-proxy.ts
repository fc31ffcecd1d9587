import type { MemoryCache } from "../cache/memory-cache.ts";
import type { Source } from "../cache/source.ts";
import type { TieredCache } from "../cache/tiered-cache.ts";
import type { Variant } from "../cache/tier.ts";
import { keyMatcherOf, originalKey, variantCacheKey } from "../cache/cache-key.ts";
import type { PurgeScope } from "../cache/cache-key.ts";
import { ProxyError } from "../errors.ts";
import type { FetchOptions, Fetcher, OriginReply } from "../fetcher/fetcher.ts";
import { VariantKeys } from "../transform/negotiate.ts";
import type { OutputFormat } from "../transform/negotiate.ts";
import type { TransformOptions } from "../transform/options.ts";
import type { WorkLimiter } from "../transform/limiter.ts";
import type { Transformer } from "../transform/pipeline.ts";
import type { ClusterCoalescer } from "./cluster-coalesce.ts";
import { Coalescer } from "./coalesce.ts";
import { isStorable, LowerTiers } from "./lower-tiers.ts";
import { etagOf, fwdStatusOf, isOriginFailure, Originals } from "./originals.ts";
import { PurgeFence } from "./purge-fence.ts";
import type { ShouldStore } from "./purge-fence.ts";
import { SourceRegistry } from "./source-registry.ts";
import type { ProxyStats } from "./stats.ts";
import type { MemoryBudget } from "../memory/memory-budget.ts";

export type { PurgeScope }; // the HTTP layer names purges through the proxy, not the cache module

export interface ImageRequest {
  /**
   * Validated origin path (decoded segments joined by "/"), or in remote mode an absolute http(s) URL. The two
   * cannot collide: a validated path never contains "//".
   */
  readonly path: string;
  /** null: deliver the original's bytes unchanged. */
  readonly options: TransformOptions | null;
  readonly accept: string | undefined;
}

export interface Timings {
  originMs?: number;
  queueMs?: number;
  transformMs?: number;
}

/**
 * How a stale entry was dealt with (RFC 9211 Cache-Status): `stale` answered at once while a background revalidation
 * runs (stale-while-revalidate); `validated` the origin confirmed it (304, or 200 with the same bytes); `replaced` the
 * origin had new bytes and the response is made from them; `error` the origin failed and the stale entry answered
 * (stale-if-error).
 */
export type RevalidationKind = "stale" | "validated" | "replaced" | "error";

export interface Revalidation {
  readonly kind: RevalidationKind;
  /** What the origin answered: 304 or 200, or for `error` the failing status (its 5xx, else 502, or 504 on a timeout). */
  readonly fwdStatus: number | undefined;
  /** Seconds of freshness left (negative: stale by that much); undefined when fresh until evicted. */
  readonly ttlSeconds: number | undefined;
}

export interface ProxyResult {
  readonly variant: Variant;
  readonly cacheStatus: "hit" | "miss";
  /** This request waited on another request's fetch/transform (RFC 9211 `collapsed`). */
  readonly collapsed: boolean;
  /** The response depends on Accept (f=auto): send `Vary: Accept`. */
  readonly varyAccept: boolean;
  /** A miss this request produced was kept by some tier (RFC 9211 `stored`); false for hits and collapsed requests. */
  readonly isStored: boolean;
  readonly timings: Timings;
  /** Set when the entry was stale (absent for fresh hits and plain misses). */
  readonly revalidation?: Revalidation | undefined;
}

export interface Produced {
  readonly variant: Variant;
  readonly timings: Timings;
  /** Found in a cache tier ("memory", "disk", "redis") rather than produced now. */
  readonly hitTier?: string | undefined;
  /** Another instance produced it while this one waited (cluster-wide coalescing). */
  readonly isClusterWaited?: boolean;
  /** Produced here and kept by some tier (memory refuses entries over --cache-max-entry-bytes). */
  readonly isStored?: boolean;
  /** This work asked the origin about a stale copy, or answered with one when the origin failed. */
  readonly revalidation?: { readonly kind: RevalidationKind; readonly fwdStatus: number | undefined } | undefined;
  /** The status of the origin request this work made (200 or 304); absent when it asked none. */
  readonly originStatus?: number;
}

/** How long entries stay fresh and how stale ones may still be used (`--cache-ttl-seconds` and issue 20's settings). */
export interface FreshnessPolicy {
  /** Freshness when the origin gives none; 0: until evicted. */
  readonly ttlSeconds: number;
  /** Within this long after expiry a stale entry answers at once and one background revalidation refreshes it. */
  readonly staleWhileRevalidateSeconds: number;
  /** Within this long after expiry a stale entry answers 200 when the origin fails. */
  readonly staleIfErrorSeconds: number;
  /** `--origin-cache-control respect`: the origin's Cache-Control/Expires set freshness, no-store/private are obeyed. */
  readonly isOriginCacheControlRespected: boolean;
}

export interface ImageProxyDeps {
  readonly fetcher: Fetcher;
  /** Remote mode (`/img?url=`), when --allowed-sources is set. */
  readonly remote?: { fetchUrl(url: string, options?: FetchOptions): Promise<OriginReply> } | undefined;
  readonly originals: MemoryCache;
  readonly variants: MemoryCache;
  readonly transformer: Transformer;
  readonly stats: ProxyStats;
  readonly limits: { readonly maxOutputDimension: number; readonly allowSvg: boolean };
  readonly negativeTtlSeconds: number;
  /** Defaults: fresh until evicted, never served stale, the origin's Cache-Control respected. */
  readonly freshness?: FreshnessPolicy | undefined;
  /** Clock in epoch ms (freshness deadlines are stored in the disk and Redis tiers); tests inject it. */
  readonly now?: () => number;
  /** Bounds concurrent origin downloads (each buffers a whole original) and sheds beyond its queue. */
  readonly fetchLimiter?: WorkLimiter | undefined;
  /** Disk and Redis tiers, asked only after a memory miss. */
  readonly lower?: TieredCache | undefined;
  /** Cluster-wide single flight over Redis. */
  readonly cluster?: ClusterCoalescer | undefined;
  /** Tells the other instances about a purge (Redis pub/sub). */
  readonly announcePurge?: ((scope: PurgeScope) => Promise<void>) | undefined;
  /** The process's memory budget: each download takes a lease of its expected size first. */
  readonly memory?: MemoryBudget | undefined;
}

/** What a stale entry was settled with, and whether this request joined another's flight of its original. */
interface Settled {
  readonly produced: Produced;
  readonly joined: boolean;
}

const NO_TIMINGS: Timings = Object.freeze({});
/**
 * After a revalidation failed, stale-if-error answers go out at once (no request waits for the origin again) and one
 * background revalidation per second probes it: with a stalled origin each probe takes the whole origin timeout (10 s
 * by default), which no request should wait through twice.
 */
export const REVALIDATION_RETRY_MS = 1000;

/**
 * getVariant(): cache → (coalesced) origin fetch → (coalesced) transform → store. Originals and variants live in
 * separate byte-bounded LRUs, so ten sizes of one image cost one origin fetch and variants cannot be flushed by a
 * stream of large originals.
 *
 * Freshness (issue 20) belongs to the original: every entry points at its original's Source (cache/source.ts), so a
 * variant is never fresher than the bytes it was made from. An entry past its freshness is revalidated through its
 * original, with one conditional request however many entries and requests wait for it:
 *
 * ```text
 * stale entry ─┬─ within --stale-while-revalidate-seconds: answer it now, revalidate in the background
 *              └─ else ask the origin (If-None-Match / If-Modified-Since, coalesced per original, cluster-wide)
 *                    ├─ 304, or 200 with the same bytes: the Source is fresh again → every entry of it is too
 *                    ├─ 200 with new bytes: Source replaced, variants of the old bytes dropped in every tier and on
 *                    │   every instance, the response made from the new bytes
 *                    └─ 5xx, timeout, refused: within --stale-if-error-seconds answer the stale entry, else fail
 * ```
 * This class is the request path for variants and the purges; getting, revalidating, downloading and storing the
 * originals is Originals (originals.ts), the disk and Redis tiers as both read and write them LowerTiers, and what
 * keeps a flight racing a purge from storing PurgeFence.
 */
export class ImageProxy {
  readonly #deps: ImageProxyDeps;
  readonly #variantFlights = new Coalescer<Produced>();
  readonly #variantKeys: VariantKeys;
  readonly #now: () => number;
  readonly #fence: PurgeFence;
  readonly #tiers: LowerTiers;
  readonly #originals: Originals;

  constructor(deps: ImageProxyDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#variantKeys = new VariantKeys(deps.limits);
    const flights = new Coalescer<Produced>();
    this.#fence = new PurgeFence([flights, this.#variantFlights, deps.cluster]);
    const sources = new SourceRegistry();
    this.#tiers = new LowerTiers(deps.lower, sources);
    const purge = (scope: PurgeScope): Promise<number> => this.#purgeEverywhere(scope);
    this.#originals = new Originals(deps, { flights, fence: this.#fence, tiers: this.#tiers, sources, purge });
  }

  /**
   * The memory tier alone, synchronously: the hot path (a fresh hit) allocates no promise and awaits nothing; its
   * freshness is one read of the entry's Source. Undefined on a memory miss or a stale entry; then call get().
   */
  lookup(request: ImageRequest): ProxyResult | undefined {
    if (request.options === null) {
      const cached = this.#deps.originals.get(originalKey(request.path));
      if (!cached || !(cached.source.freshUntilMs > this.#now())) return undefined;
      this.#deps.stats.hits++;
      return {
        variant: cached,
        cacheStatus: "hit",
        collapsed: false,
        varyAccept: false,
        isStored: false,
        timings: NO_TIMINGS,
      };
    }
    const { canonical } = this.#variantKeys.resolve(request.options, request.accept);
    const cached = this.#deps.variants.get(variantCacheKey(request.path, canonical));
    if (!cached || !(cached.source.freshUntilMs > this.#now())) return undefined;
    this.#deps.stats.hits++;
    return {
      variant: cached,
      cacheStatus: "hit",
      collapsed: false,
      varyAccept: request.options.format === "auto",
      isStored: false,
      timings: NO_TIMINGS,
    };
  }

  /** The memory tier, then (on a miss or a stale entry) the lower tiers, the cluster and the origin. */
  async get(request: ImageRequest): Promise<ProxyResult> {
    const hit = this.lookup(request);
    if (hit) return hit;
    const { path } = request;
    if (request.options === null) {
      return this.#answer(
        this.#deps.originals,
        originalKey(path),
        path,
        false,
        () => this.#originals.flight(path, true),
        (o) => Promise.resolve(o),
      );
    }
    const options = request.options;
    const { format, canonical } = this.#variantKeys.resolve(options, request.accept);
    const key = variantCacheKey(path, canonical);
    const flight = (): { promise: Promise<Produced>; joined: boolean } => this.#variant(key, path, options, format);
    return this.#answer(this.#deps.variants, key, path, options.format === "auto", flight, () => flight().promise);
  }

  /**
   * After the hot path found nothing fresh: the stale entry in memory, else `flight()` (the lower tiers, else new
   * work). A stale entry (from memory or a lower tier) goes through #settleStale; `produceNew` makes the response
   * when the origin turned out to have new bytes (given what the original's revalidation produced).
   */
  async #answer(
    memory: MemoryCache,
    key: string,
    path: string,
    varyAccept: boolean,
    flight: () => { promise: Promise<Produced>; joined: boolean },
    produceNew: (original: Produced) => Promise<Produced>,
  ): Promise<ProxyResult> {
    let stale = memory.get(key);
    let tier = "memory";
    if (stale?.source.isReplaced) {
      memory.delete(key);
      stale = undefined;
    }
    if (!stale) {
      const { promise, joined } = flight();
      const produced = await promise;
      if (joined) this.#deps.stats.coalesced++;
      const isStale = produced.hitTier !== undefined && !(produced.variant.source.freshUntilMs > this.#now());
      if (!isStale || produced.revalidation !== undefined) return this.#result(produced, joined, varyAccept);
      stale = produced.variant;
      tier = produced.hitTier ?? "memory";
    }
    const { produced, joined } = await this.#settleStale(stale, path, tier, produceNew);
    return this.#result(produced, joined, varyAccept);
  }

  /**
   * A stale entry of `path`: answered at once within --stale-while-revalidate-seconds (or after a recent failed
   * revalidation, within --stale-if-error-seconds), else revalidated through its original first.
   */
  async #settleStale(
    entry: Variant,
    path: string,
    tier: string,
    produceNew: (original: Produced) => Promise<Produced>,
  ): Promise<Settled> {
    const { source } = entry;
    const staleMs = this.#now() - source.freshUntilMs;
    if (this.#originals.mayServeWhileRevalidating(source, staleMs)) {
      this.#originals.revalidateInBackground(path);
      return servedEntry(entry, tier, "stale", undefined);
    }
    if (source.failedAtMs !== undefined && this.#originals.mayServeIfError(source, staleMs)) {
      if (this.#now() - source.failedAtMs >= REVALIDATION_RETRY_MS) this.#originals.revalidateInBackground(path);
      return servedEntry(entry, tier, "error", source.failedStatus);
    }
    const run = this.#originals.flight(path, false);
    let original: Produced;
    try {
      original = await run.promise;
    } catch (error) {
      if (isOriginFailure(error) && this.#originals.mayServeIfError(source, this.#now() - source.freshUntilMs)) {
        // The next requests answer stale at once (see REVALIDATION_RETRY_MS).
        source.noteFailure(this.#now(), fwdStatusOf(error));
        return servedEntry(entry, tier, "error", source.failedStatus);
      }
      throw error;
    }
    if (run.joined) this.#deps.stats.coalesced++;
    const settled = this.#settledByOriginal(entry, tier, original, run.joined);
    if (settled) return settled;
    const made = await produceNew(original);
    return {
      produced: { ...made, revalidation: { kind: "replaced", fwdStatus: original.originStatus ?? 200 } },
      joined: run.joined,
    };
  }

  /**
   * The stale entry as its original's revalidation (`original`) left it: fresh again, or answered stale-if-error (else
   * thrown); undefined when the origin had new bytes, from which the response is made anew.
   */
  #settledByOriginal(entry: Variant, tier: string, original: Produced, joined: boolean): Settled | undefined {
    const { source } = entry;
    const current = original.variant.source;
    const failed = original.revalidation?.kind === "error" ? original.revalidation.fwdStatus : undefined;
    if (failed !== undefined) {
      // The original's revalidation failed and answered with its stale copy; this entry may answer stale too, or not.
      if (current === source && this.#originals.mayServeIfError(source, this.#now() - source.freshUntilMs))
        return servedEntry(entry, tier, "error", failed);
      const code = failed === 504 ? "ORIGIN_TIMEOUT" : "ORIGIN_FAILED";
      throw new ProxyError(code, "the origin failed and the cached copy may not be served stale", {
        originStatus: failed,
      });
    }
    if (current === source && !source.isReplaced) {
      // The same bytes, fresh again. No fwd-status when no request of ours asked the origin (a tier had it fresh).
      const fwdStatus = original.originStatus;
      return fwdStatus === undefined
        ? { produced: { variant: entry, timings: NO_TIMINGS, hitTier: tier }, joined }
        : { ...servedEntry(entry, tier, "validated", fwdStatus), joined };
    }
    return undefined;
  }

  /** A memory miss answered: from a tier (a hit), or produced here or by another instance (a miss). */
  #result(produced: Produced, joined: boolean, varyAccept: boolean): ProxyResult {
    const { stats } = this.#deps;
    const isHit = produced.hitTier !== undefined;
    if (isHit) stats.hits++;
    else stats.misses++;
    const collapsed = joined || produced.isClusterWaited === true;
    const revalidation = produced.revalidation;
    if (revalidation?.kind === "stale") stats.staleWhileRevalidate++;
    else if (revalidation?.kind === "error") stats.staleIfError++;
    return {
      variant: produced.variant,
      cacheStatus: isHit ? "hit" : "miss",
      collapsed,
      varyAccept,
      isStored: !isHit && !collapsed && produced.isStored === true,
      timings: produced.timings,
      revalidation: revalidation && { ...revalidation, ttlSeconds: this.#ttlSecondsOf(produced.variant.source) },
    };
  }

  #ttlSecondsOf(source: Source): number | undefined {
    const left = source.freshUntilMs - this.#now();
    return Number.isFinite(left) ? Math.floor(left / 1000) : undefined;
  }

  /** The variant's flight: the lower tiers, else the original (fresh) and one transform, stored everywhere. */
  #variant(
    key: string,
    path: string,
    options: TransformOptions,
    format: OutputFormat,
  ): { promise: Promise<Produced>; joined: boolean } {
    return this.#variantFlights.run(key, (flight) => {
      const shouldStore = this.#fence.shouldStoreFor(key, flight);
      return this.#throughTiers(key, path, shouldStore, () =>
        this.#produceVariant(key, path, options, format, shouldStore),
      );
    });
  }

  async #produceVariant(
    key: string,
    path: string,
    options: TransformOptions,
    format: OutputFormat,
    shouldStore: ShouldStore,
  ): Promise<Produced> {
    const original = await this.#originals.get(path);
    const { source } = original.variant;
    const transforming = this.#deps.transformer.transform(original.variant.body, options, format);
    void source.etag; // hashes the original (for the tiers' metadata) on this thread while sharp works on its own
    const result = await transforming;
    const variant: Variant = {
      body: result.body,
      format: result.format,
      etag: etagOf(result.body),
      width: result.width,
      height: result.height,
      originalBytes: original.variant.originalBytes,
      source,
    };
    return {
      variant,
      timings: { ...original.timings, queueMs: result.queueMs, transformMs: result.transformMs },
      isStored: shouldStore() && isStorable(variant) && this.#deps.variants.set(key, variant),
    };
  }

  /**
   * After a memory miss: the lower tiers (a hit there is promoted to memory, fresh or stale), else produce (coalesced
   * across the cluster when Redis is configured) and store in every tier. Without lower tiers this is `produce()`.
   */
  async #throughTiers(
    key: string,
    path: string,
    shouldStore: ShouldStore,
    produce: () => Promise<Produced>,
  ): Promise<Produced> {
    const { lower, cluster } = this.#deps;
    if (!lower) return produce();
    const lookup = (): Promise<Produced | undefined> => this.#tiers.hit(key, path, this.#deps.variants, shouldStore);
    const found = await lookup();
    if (found) return found;
    const produceAndStore = async (): Promise<{ result: Produced; isShared: boolean }> => {
      const result = await produce();
      if (!shouldStore() || !isStorable(result.variant)) return { result, isShared: false };
      const { isStored, isShared } = await this.#tiers.store(key, result.variant, shouldStore);
      return { result: isStored ? { ...result, isStored } : { ...result, isStored: false }, isShared };
    };
    if (!cluster) return (await produceAndStore()).result;
    const outcome = await cluster.run(key, lookup, produceAndStore);
    if (!outcome.waited) return outcome.result;
    this.#deps.stats.coalesced++;
    return { variant: outcome.result.variant, timings: {}, isClusterWaited: true };
  }

  /**
   * Removes what `scope` names from every tier and, with Redis, on every instance. Lower tiers go first: emptying
   * memory first would let a request in between promote the old entry back from disk or Redis.
   */
  async purge(scope: PurgeScope): Promise<number> {
    const removed = await this.#purgeEverywhere(scope);
    this.#deps.stats.purgedEntries += removed;
    return removed;
  }

  /** Another instance purged `scope`: drop it from memory and local tiers (it already emptied the shared ones). */
  async applyRemotePurge(scope: PurgeScope): Promise<void> {
    await this.#fence.fenced(scope, async () => {
      await this.#deps.lower?.purge(scope, true);
      this.#purgeMemory(scope);
    });
  }

  /** Fenced (see PurgeFence): the lower tiers, the other instances, then memory; how many entries it removed here. */
  #purgeEverywhere(scope: PurgeScope): Promise<number> {
    return this.#fence.fenced(scope, async () => {
      const inTiers = (await this.#deps.lower?.purge(scope)) ?? 0;
      await this.#deps.announcePurge?.(scope);
      return inTiers + this.#purgeMemory(scope);
    });
  }

  /** Memory, the negative cache and the known versions; synchronous. */
  #purgeMemory(scope: PurgeScope): number {
    const originals = this.#originals.purgeMemory(scope);
    if (scope.kind === "all") return originals + this.#deps.variants.clear();
    return originals + this.#deps.variants.deleteWhere(keyMatcherOf(scope));
  }
}

/** `entry` itself as the response, with how its staleness was dealt with; `joined` false: it waited on no flight. */
function servedEntry(entry: Variant, tier: string, kind: RevalidationKind, fwdStatus: number | undefined): Settled {
  return {
    produced: { variant: entry, timings: NO_TIMINGS, hitTier: tier, revalidation: { kind, fwdStatus } },
    joined: false,
  };
}
