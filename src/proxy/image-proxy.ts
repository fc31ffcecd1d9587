import { LRUCache } from "lru-cache";
import { createHash } from "node:crypto";
import type { MemoryCache } from "../cache/memory-cache.ts";
import { Source } from "../cache/source.ts";
import type { TieredCache } from "../cache/tiered-cache.ts";
import type { Variant } from "../cache/tier.ts";
import { keyMatcherOf, originalKey, pathMatcherOf, variantCacheKey } from "../cache/cache-key.ts";
import type { PurgeScope } from "../cache/cache-key.ts";
import { ProxyError } from "../errors.ts";
import type {
  FetchOptions,
  Fetcher,
  OriginCaching,
  OriginReply,
  SizeListener,
  Validators,
} from "../fetcher/fetcher.ts";
import { sniffImageFormat } from "../shared/image-format.ts";
import type { ImageFormat } from "../shared/image-format.ts";
import { VariantKeys } from "../transform/negotiate.ts";
import type { OutputFormat } from "../transform/negotiate.ts";
import type { TransformOptions } from "../transform/options.ts";
import type { WorkLimiter } from "../transform/limiter.ts";
import type { Transformer } from "../transform/pipeline.ts";
import type { ClusterCoalescer } from "./cluster-coalesce.ts";
import { Coalescer } from "./coalesce.ts";
import type { Flight } from "./coalesce.ts";
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

interface Produced {
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

const NO_TIMINGS: Timings = Object.freeze({});
/** Before any original has been seen: a 4K JPEG is 2-8 MB. */
const INITIAL_EXPECTED_ORIGINAL_BYTES = 4 * 1024 * 1024;
const DEFAULT_FRESHNESS: FreshnessPolicy = {
  ttlSeconds: 0,
  staleWhileRevalidateSeconds: 0,
  staleIfErrorSeconds: 0,
  isOriginCacheControlRespected: true,
};
/**
 * After a revalidation failed, stale-if-error answers go out at once (no request waits for the origin again) and one
 * background revalidation per second probes it: with a stalled origin each probe takes the whole origin timeout (10 s
 * by default), which no request should wait through twice.
 */
export const REVALIDATION_RETRY_MS = 1000;

/**
 * Checked right before every store of a flight's result (memory, lower tiers, promotions, the negative cache): false
 * once a purge of its key began after the flight did, or was under way when it started. Its result may then predate
 * the purge, and storing it would undo the purge.
 */
type ShouldStore = () => boolean;

/** Strong ETag from the bytes: equal bytes, equal tag, on every instance. */
export function etagOf(body: Buffer): string {
  return `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
}

/**
 * An original as a cache entry. Its ETag (its Source's) is computed on first use: hashing a 3 MB original (~2 ms) is
 * done while sharp makes its first variant rather than on the way to it.
 */
function originalVariant(body: Buffer, format: ImageFormat, source: Source): Variant {
  return {
    body,
    format,
    originalBytes: body.byteLength,
    source,
    get etag(): string {
      return source.etag;
    },
  };
}

/** The failures stale-if-error covers (RFC 5861 §4): the origin answered 5xx, timed out or could not be reached. */
function isOriginFailure(error: unknown): error is ProxyError {
  return error instanceof ProxyError && (error.code === "ORIGIN_FAILED" || error.code === "ORIGIN_TIMEOUT");
}

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
 */
export class ImageProxy {
  readonly #deps: ImageProxyDeps;
  readonly #originalFlights = new Coalescer<Produced>();
  readonly #variantFlights = new Coalescer<Produced>();
  readonly #notFound: LRUCache<string, ProxyError> | undefined;
  readonly #variantKeys: VariantKeys;
  readonly #sources = new SourceRegistry();
  readonly #now: () => number;
  readonly #policy: FreshnessPolicy;
  /** Freshness when the origin gives none: --cache-ttl-seconds, or until evicted. */
  readonly #defaultLifetimeMs: number;
  /** Expected size of the next original (an average of recent ones): what a download reserves before it starts. */
  #expectedOriginalBytes = INITIAL_EXPECTED_ORIGINAL_BYTES;
  /** Key matchers of the purges under way (usually none). */
  readonly #purges = new Set<(key: string) => boolean>();

  constructor(deps: ImageProxyDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#policy = deps.freshness ?? DEFAULT_FRESHNESS;
    this.#defaultLifetimeMs = this.#policy.ttlSeconds > 0 ? this.#policy.ttlSeconds * 1000 : Infinity;
    this.#variantKeys = new VariantKeys(deps.limits);
    if (deps.negativeTtlSeconds > 0) {
      this.#notFound = new LRUCache<string, ProxyError>({
        max: 10_000,
        ttl: deps.negativeTtlSeconds * 1000,
        ttlResolution: deps.now ? 0 : 1,
        ...(deps.now ? { perf: { now: deps.now } } : {}),
      });
    }
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
        () => this.#original(path, true),
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
  ): Promise<{ produced: Produced; joined: boolean }> {
    const { source } = entry;
    const staleMs = this.#now() - source.freshUntilMs;
    const served = (
      kind: RevalidationKind,
      fwdStatus: number | undefined,
    ): { produced: Produced; joined: boolean } => ({
      produced: { variant: entry, timings: NO_TIMINGS, hitTier: tier, revalidation: { kind, fwdStatus } },
      joined: false,
    });
    if (this.#mayServeWhileRevalidating(source, staleMs)) {
      this.#revalidateInBackground(path);
      return served("stale", undefined);
    }
    if (source.failedAtMs !== undefined && this.#mayServeIfError(source, staleMs)) {
      if (this.#now() - source.failedAtMs >= REVALIDATION_RETRY_MS) this.#revalidateInBackground(path);
      return served("error", source.failedStatus);
    }
    const run = this.#original(path, false);
    let original: Produced;
    try {
      original = await run.promise;
    } catch (error) {
      if (isOriginFailure(error) && this.#mayServeIfError(source, this.#now() - source.freshUntilMs)) {
        source.failedAtMs = this.#now(); // the next requests answer stale at once (see REVALIDATION_RETRY_MS)
        source.failedStatus = fwdStatusOf(error);
        return served("error", source.failedStatus);
      }
      throw error;
    }
    if (run.joined) this.#deps.stats.coalesced++;
    const current = original.variant.source;
    const failed = original.revalidation?.kind === "error" ? original.revalidation.fwdStatus : undefined;
    if (failed !== undefined) {
      // The original's revalidation failed and answered with its stale copy; this entry may answer stale too, or not.
      if (current === source && this.#mayServeIfError(source, this.#now() - source.freshUntilMs))
        return served("error", failed);
      const code = failed === 504 ? "ORIGIN_TIMEOUT" : "ORIGIN_FAILED";
      throw new ProxyError(code, "the origin failed and the cached copy may not be served stale", {
        originStatus: failed,
      });
    }
    if (current === source && !source.isReplaced) {
      // The same bytes, fresh again. No fwd-status when no request of ours asked the origin (a tier had it fresh).
      const fwdStatus = original.originStatus;
      return fwdStatus === undefined
        ? { produced: { variant: entry, timings: NO_TIMINGS, hitTier: tier }, joined: run.joined }
        : { ...served("validated", fwdStatus), joined: run.joined };
    }
    const made = await produceNew(original);
    return {
      produced: { ...made, revalidation: { kind: "replaced", fwdStatus: original.originStatus ?? 200 } },
      joined: run.joined,
    };
  }

  #mayServeWhileRevalidating(source: Source, staleMs: number): boolean {
    return !source.mustRevalidate && staleMs <= this.#policy.staleWhileRevalidateSeconds * 1000;
  }

  #mayServeIfError(source: Source, staleMs: number): boolean {
    return !source.mustRevalidate && staleMs <= this.#policy.staleIfErrorSeconds * 1000;
  }

  /** One revalidation of `path`'s original, detached (coalesced with any under way); failures are counted, not thrown. */
  #revalidateInBackground(path: string): void {
    this.#original(path, false).promise.catch(() => undefined);
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
      const shouldStore = this.#shouldStoreFor(key, flight);
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
    const original = await this.#getOriginal(path);
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
      isStored: shouldStore() && this.#isStorable(variant) && this.#deps.variants.set(key, variant),
    };
  }

  /** Neither no-store (the origin forbade it) nor made from bytes the origin has since replaced. */
  #isStorable(entry: Variant): boolean {
    return !entry.source.isNoStore && !entry.source.isReplaced;
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
    const lookup = (): Promise<Produced | undefined> => this.#lowerHit(key, path, this.#deps.variants, shouldStore);
    const found = await lookup();
    if (found) return found;
    const produceAndStore = async (): Promise<{ result: Produced; isShared: boolean }> => {
      const result = await produce();
      if (!shouldStore() || !this.#isStorable(result.variant)) return { result, isShared: false };
      const { isStored, isShared } = await this.#storeLower(key, result.variant, shouldStore);
      return { result: isStored ? { ...result, isStored } : { ...result, isStored: false }, isShared };
    };
    if (!cluster) return (await produceAndStore()).result;
    const outcome = await cluster.run(key, lookup, produceAndStore);
    if (!outcome.waited) return outcome.result;
    this.#deps.stats.coalesced++;
    return { variant: outcome.result.variant, timings: {}, isClusterWaited: true };
  }

  /** Writes to the lower tiers; `isStored` is false when a purge won the race (the entry is then taken out again). */
  async #storeLower(
    key: string,
    entry: Variant,
    shouldStore: ShouldStore,
  ): Promise<{ isStored: boolean; isShared: boolean }> {
    const lower = this.#deps.lower;
    if (!lower) return { isStored: false, isShared: false };
    const written = await lower.set(key, entry);
    if (shouldStore()) return written;
    // A purge arrived while the entry was being written. This instance's own purges catch such writes (the disk
    // tier cancels them, Redis runs the SET before the purge's SCAN), but another instance's SCAN may have passed
    // the key before our SET landed: take the entry back out.
    await lower.delete(key);
    return { isStored: false, isShared: false };
  }

  /**
   * An entry from a lower tier, joined to this process's Source of its path (see #adopt), and promoted to memory.
   * Undefined on a miss, and for an entry of another version than the one this process knows (deleted: a
   * variant of replaced bytes, written by an instance that had not heard of the change yet).
   */
  async #lowerHit(
    key: string,
    path: string,
    memory: MemoryCache,
    shouldStore: ShouldStore,
  ): Promise<Produced | undefined> {
    const lower = this.#deps.lower;
    if (!lower) return undefined;
    const hit = await lower.get(key, shouldStore);
    if (!hit) return undefined;
    const entry = this.#adopt(path, hit.variant);
    if (!entry) {
      void lower.delete(key);
      return undefined;
    }
    if (shouldStore()) memory.set(key, entry);
    return { variant: entry, timings: {}, hitTier: hit.tier };
  }

  /**
   * `entry` (read from a lower tier) with its Source replaced by the process's one for its path when they are the
   * same version, so that revalidating or replacing one reaches it too; a later deadline stored with it (another
   * instance revalidated) carries over. Undefined when the versions differ. The first of a path registers its own.
   */
  #adopt(path: string, entry: Variant): Variant | undefined {
    const stored = entry.source;
    const known = this.#sources.get(path);
    if (!known) {
      if (stored.etag !== "") this.#sources.set(path, stored); // "": a variant from before issue 20, version unknown
      return entry;
    }
    if (known.etag !== stored.etag) return undefined;
    if (stored.freshUntilMs > known.freshUntilMs) {
      known.freshUntilMs = stored.freshUntilMs;
      known.lifetimeMs = stored.lifetimeMs;
      known.validators = stored.validators;
      known.failedAtMs = undefined;
    }
    return { ...entry, source: known };
  }

  /**
   * Removes what `scope` names from every tier and, with Redis, on every instance. Lower tiers go first: emptying
   * memory first would let a request in between promote the old entry back from disk or Redis.
   */
  async purge(scope: PurgeScope): Promise<number> {
    const removed = await this.#fenced(scope, async () => {
      const inTiers = (await this.#deps.lower?.purge(scope)) ?? 0;
      await this.#deps.announcePurge?.(scope);
      return inTiers + this.#purgeMemory(scope);
    });
    this.#deps.stats.purgedEntries += removed;
    return removed;
  }

  /** Another instance purged `scope`: drop it from memory and local tiers (it already emptied the shared ones). */
  async applyRemotePurge(scope: PurgeScope): Promise<void> {
    await this.#fenced(scope, async () => {
      await this.#deps.lower?.purge(scope, true);
      this.#purgeMemory(scope);
    });
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
  async #fenced<T>(scope: PurgeScope, purge: () => Promise<T>): Promise<T> {
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

  #abandonFlights(matches: (key: string) => boolean): void {
    this.#originalFlights.abandon(matches);
    this.#variantFlights.abandon(matches);
    this.#deps.cluster?.abandon(matches);
  }

  /** The flight's ShouldStore; it remembers whether the flight began while a purge of its key was under way. */
  #shouldStoreFor(key: string, flight: Flight): ShouldStore {
    let isBornInPurge = false;
    for (const matches of this.#purges) isBornInPurge ||= matches(key);
    return isBornInPurge ? () => false : () => !flight.isAbandoned;
  }

  /** Memory, the negative cache and the known versions; synchronous. */
  #purgeMemory(scope: PurgeScope): number {
    if (scope.kind === "all") {
      this.#notFound?.clear();
      this.#sources.deleteWhere(() => true);
      return this.#deps.originals.clear() + this.#deps.variants.clear();
    }
    if (scope.kind !== "variants") {
      const matches = pathMatcherOf(scope);
      if (this.#notFound) for (const path of [...this.#notFound.keys()]) if (matches(path)) this.#notFound.delete(path);
      this.#sources.deleteWhere(matches);
    }
    const matches = keyMatcherOf(scope);
    return this.#deps.originals.deleteWhere(matches) + this.#deps.variants.deleteWhere(matches);
  }

  /**
   * The original to make a new variant from: fresh from memory, or stale within --stale-while-revalidate-seconds
   * (revalidated in the background), else from the original's flight (lower tiers, the origin).
   */
  async #getOriginal(path: string): Promise<Produced> {
    const cached = this.#deps.originals.get(originalKey(path));
    if (cached && !cached.source.isReplaced) {
      const staleMs = this.#now() - cached.source.freshUntilMs;
      if (staleMs < 0) return { variant: cached, timings: {} };
      if (this.#mayServeWhileRevalidating(cached.source, staleMs)) {
        this.#revalidateInBackground(path);
        return { variant: cached, timings: {} };
      }
    }
    const run = this.#original(path, true);
    const original = await run.promise;
    if (run.joined) this.#deps.stats.coalesced++;
    if (original.revalidation === undefined && !(original.variant.source.freshUntilMs > this.#now()))
      this.#revalidateInBackground(path); // a stale copy from a lower tier, within stale-while-revalidate
    return original;
  }

  /**
   * The flight of `path`'s original: a fresh copy at hand, else one from the origin, asked conditionally when a stale
   * copy is at hand; at most one per original in this process (and with Redis in the cluster). `mayAnswerStale`: a
   * stale copy found on disk or in Redis within --stale-while-revalidate-seconds is answered as it is (the caller
   * revalidates in the background); background revalidations pass false.
   */
  #original(path: string, mayAnswerStale: boolean): { promise: Promise<Produced>; joined: boolean } {
    const key = originalKey(path);
    return this.#originalFlights.run(key, (flight) =>
      this.#obtainOriginal(path, key, this.#shouldStoreFor(key, flight), mayAnswerStale),
    );
  }

  async #obtainOriginal(
    path: string,
    key: string,
    shouldStore: ShouldStore,
    mayAnswerStale: boolean,
  ): Promise<Produced> {
    const { lower, cluster, originals } = this.#deps;
    let candidate = originals.get(key);
    let tier = "memory";
    if (candidate?.source.isReplaced) candidate = undefined;
    if (candidate && candidate.source.freshUntilMs > this.#now())
      return { variant: candidate, timings: {}, hitTier: tier };
    if (!candidate && lower) {
      const hit = await this.#lowerHit(key, path, originals, shouldStore);
      if (hit) {
        const staleMs = this.#now() - hit.variant.source.freshUntilMs;
        if (staleMs < 0 || (mayAnswerStale && this.#mayServeWhileRevalidating(hit.variant.source, staleMs))) return hit;
        candidate = hit.variant;
        tier = hit.hitTier ?? tier;
      }
    }
    const stale = candidate;
    const ask = (): Promise<{ result: Produced; isShared: boolean }> =>
      this.#askOrigin(path, key, stale, tier, shouldStore);
    try {
      if (!cluster || !lower) return (await ask()).result;
      const lookupFresh = async (): Promise<Produced | undefined> => {
        const hit = await this.#lowerHit(key, path, originals, shouldStore);
        return hit && hit.variant.source.freshUntilMs > this.#now() ? hit : undefined;
      };
      const outcome = await cluster.run(key, lookupFresh, ask);
      if (!outcome.waited) return outcome.result;
      this.#deps.stats.coalesced++;
      return { ...outcome.result, timings: {}, isClusterWaited: true };
    } catch (error) {
      if (
        stale &&
        isOriginFailure(error) &&
        this.#mayServeIfError(stale.source, this.#now() - stale.source.freshUntilMs)
      ) {
        return {
          variant: stale,
          timings: {},
          hitTier: tier,
          revalidation: { kind: "error", fwdStatus: fwdStatusOf(error) },
        };
      }
      throw error;
    }
  }

  /**
   * One request to the origin for `path`: conditional when a stale copy is at hand. The answer decides the version:
   * 304 refreshes the copy's Source; a 200 whose bytes hash like the Source's known version refreshes that one; other
   * bytes become a new Source, replacing the old (see #replace). The original is then stored in every tier, unless the
   * origin said no-store.
   */
  async #askOrigin(
    path: string,
    key: string,
    stale: Variant | undefined,
    tier: string,
    shouldStore: ShouldStore,
  ): Promise<{ result: Produced; isShared: boolean }> {
    const { stats } = this.#deps;
    let reply: OriginReply;
    let originMs: number;
    try {
      ({ reply, originMs } = await this.#download(path, stale?.source.validators, shouldStore));
    } catch (error) {
      if (stale) {
        stats.revalidationsFailed++;
        if (isOriginFailure(error)) {
          stale.source.failedAtMs = this.#now();
          stale.source.failedStatus = fwdStatusOf(error);
        }
      }
      throw error;
    }
    const now = this.#now();
    const timings = { originMs };
    if (reply.status === 304) {
      if (!stale) throw new ProxyError("ORIGIN_FAILED", "the origin answered 304 to an unconditional request");
      stats.revalidationsNotModified++;
      this.#refresh(stale.source, reply.caching, now, false);
      const stored = await this.#storeOriginal(key, stale, shouldStore);
      const result: Produced = {
        variant: stale,
        timings,
        hitTier: tier,
        originStatus: 304,
        revalidation: { kind: "validated", fwdStatus: 304 },
      };
      return { result, isShared: stored.isShared };
    }
    if (stale) stats.revalidationsModified++;
    const body = reply.body;
    const format = this.#checkFormat(body);
    const known = stale?.source ?? this.#sources.get(path);
    const etag = known ? etagOf(body) : undefined; // only a comparison needs the hash now
    if (known && !known.isReplaced && known.etag === etag) {
      this.#refresh(known, reply.caching, now, true);
      const original = stale ?? originalVariant(body, format, known);
      const stored = await this.#storeOriginal(key, original, shouldStore);
      const result: Produced = {
        variant: original,
        timings,
        isStored: stored.isStored,
        originStatus: 200,
        ...(stale ? { hitTier: tier, revalidation: { kind: "validated" as const, fwdStatus: 200 } } : {}),
      };
      return { result, isShared: stored.isShared };
    }
    const freshness = this.#freshnessOf(reply.caching, now);
    const source = new Source({ etag: etag ?? (() => etagOf(body)), ...freshness });
    const original = originalVariant(body, format, source);
    // A flight a purge fenced may bring back bytes from before it: they must not become the path's version.
    if (shouldStore()) {
      if (known) await this.#replace(path, known, source);
      else this.#sources.set(path, source);
    }
    const stored = await this.#storeOriginal(key, original, shouldStore);
    const result: Produced = {
      variant: original,
      timings,
      isStored: stored.isStored,
      originStatus: 200,
      ...(stale ? { revalidation: { kind: "replaced" as const, fwdStatus: 200 } } : {}),
    };
    return { result, isShared: stored.isShared };
  }

  /** In memory and every lower tier, unless the origin said no-store or a purge fenced this flight. */
  async #storeOriginal(
    key: string,
    original: Variant,
    shouldStore: ShouldStore,
  ): Promise<{ isStored: boolean; isShared: boolean }> {
    if (!shouldStore() || !this.#isStorable(original)) return { isStored: false, isShared: false };
    const inMemory = this.#deps.originals.set(key, original);
    const written = await this.#storeLower(key, original, shouldStore);
    return { isStored: inMemory || written.isStored, isShared: written.isShared };
  }

  /**
   * The origin has new bytes for `path`: every entry of the old version is dead at once in this process (its Source
   * is retired), and its variants are dropped from the lower tiers and, announced as a purge of the path, from the
   * other instances (which drop their copies of the old original too). Fenced like a purge, so a transform of the old
   * bytes finishing meanwhile stores nothing.
   */
  async #replace(path: string, old: Source, next: Source): Promise<void> {
    old.replace();
    this.#sources.set(path, next);
    this.#deps.stats.originalsChanged++;
    const scope: PurgeScope = { kind: "variants", path };
    await this.#fenced(scope, async () => {
      await this.#deps.lower?.purge(scope);
      await this.#deps.announcePurge?.(scope);
      this.#purgeMemory(scope);
    });
  }

  /**
   * Freshness of a version the origin just confirmed: from the 200's headers (`isFull`), or from a 304's, which
   * update only what they carry (RFC 9111 §4.3.4): without Cache-Control or Expires the lifetime stays as it was.
   */
  #refresh(source: Source, caching: OriginCaching, now: number, isFull: boolean): void {
    const freshness = this.#freshnessOf(caching, now);
    const saysLifetime = this.#policy.isOriginCacheControlRespected && caching.lifetimeSeconds !== undefined;
    if (isFull || saysLifetime) source.lifetimeMs = freshness.lifetimeMs;
    if (isFull || freshness.mustRevalidate) source.mustRevalidate = freshness.mustRevalidate;
    source.freshUntilMs = now + source.lifetimeMs;
    source.validators = mergeValidators(source.validators, caching.validators, isFull);
    source.failedAtMs = undefined;
  }

  #freshnessOf(
    caching: OriginCaching,
    now: number,
  ): {
    freshUntilMs: number;
    lifetimeMs: number;
    validators: Validators;
    mustRevalidate: boolean;
    isNoStore: boolean;
  } {
    const respect = this.#policy.isOriginCacheControlRespected;
    const lifetimeMs =
      respect && caching.lifetimeSeconds !== undefined ? caching.lifetimeSeconds * 1000 : this.#defaultLifetimeMs;
    return {
      freshUntilMs: now + lifetimeMs,
      lifetimeMs,
      validators: caching.validators,
      mustRevalidate: respect && caching.mustRevalidate,
      isNoStore: respect && caching.isNoStore,
    };
  }

  /** One GET (conditional with `validators`) through the fetch limiter and the memory budget, counted. */
  async #download(
    path: string,
    validators: Validators | undefined,
    shouldStore: ShouldStore,
  ): Promise<{ reply: OriginReply; originMs: number }> {
    const { stats, fetcher } = this.#deps;
    const remembered = this.#notFound?.get(path);
    if (remembered) {
      stats.negativeHits++;
      throw remembered;
    }
    let started = performance.now();
    let reply: OriginReply;
    const { remote, fetchLimiter, memory } = this.#deps;
    const download = (): Promise<OriginReply> => {
      started = performance.now(); // after any wait for a fetch slot
      stats.originFetches++;
      const options = { onSize, validators };
      if (!path.includes("//")) return fetcher.fetchOriginal(path, options);
      if (remote) return remote.fetchUrl(path, options);
      throw new ProxyError("FORBIDDEN", "remote sources are not enabled on this proxy");
    };
    // The memory lease covers the download (refusals are counted by the budget): the expected size until the origin
    // declares one, then that, growing with the bytes if it lied or declared none. Once the body is here it is held
    // by the cache or by the transforms that use it, whose leases count it.
    const lease = await memory?.admit(this.#expectedOriginalBytes);
    const onSize: SizeListener | undefined = lease ? (bytes: number): void => lease.resize(bytes) : undefined;
    try {
      reply = fetchLimiter ? (await fetchLimiter.run(download)).value : await download();
    } catch (error) {
      if (error instanceof ProxyError && error.code === "OVERLOADED") {
        stats.shed++; // refused before any download
        throw error;
      }
      stats.originErrors++;
      const code = error instanceof ProxyError ? error.code : "INTERNAL";
      stats.originErrorsByCode.set(code, (stats.originErrorsByCode.get(code) ?? 0) + 1);
      if (error instanceof ProxyError && error.code === "ORIGIN_NOT_FOUND" && shouldStore())
        this.#notFound?.set(path, error);
      throw error;
    } finally {
      lease?.release();
    }
    if (reply.status === 200) this.#expectedOriginalBytes += (reply.body.byteLength - this.#expectedOriginalBytes) / 8;
    return { reply, originMs: performance.now() - started };
  }

  #checkFormat(body: Buffer): ImageFormat {
    const format = sniffImageFormat(body);
    if (format === undefined)
      throw new ProxyError("NOT_AN_IMAGE", "the origin's file is not an image format Imagika knows");
    if (format === "svg" && !this.#deps.limits.allowSvg) {
      throw new ProxyError(
        "NOT_AN_IMAGE",
        "SVG originals are refused (start the proxy with --allow-svg to rasterise them)",
      );
    }
    return format;
  }
}

/** RFC 9211 fwd-status for a failed origin: the status it answered (a 5xx), else ours (502 unreachable, 504 timeout). */
function fwdStatusOf(error: ProxyError): number {
  return error.originStatus ?? error.status;
}

/** A 200 brings the complete validators; a 304 only those it repeats or changes (RFC 9111 §4.3.4). */
function mergeValidators(stored: Validators, sent: Validators, isFull: boolean): Validators {
  if (isFull) return sent;
  return {
    ...stored,
    ...(sent.etag !== undefined ? { etag: sent.etag } : {}),
    ...(sent.lastModified !== undefined ? { lastModified: sent.lastModified } : {}),
  };
}
