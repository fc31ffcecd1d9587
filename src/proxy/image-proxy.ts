import { LRUCache } from "lru-cache";
import { createHash } from "node:crypto";
import type { MemoryCache } from "../cache/memory-cache.ts";
import type { TieredCache } from "../cache/tiered-cache.ts";
import type { Variant } from "../cache/tier.ts";
import { keyMatcherOf, originalKey, pathMatcherOf, variantCacheKey } from "../cache/cache-key.ts";
import type { PurgeScope } from "../cache/cache-key.ts";
import { ProxyError } from "../errors.ts";
import type { Fetcher, SizeListener } from "../fetcher/fetcher.ts";
import { sniffImageFormat } from "../image-format.ts";
import type { ImageFormat } from "../image-format.ts";
import { VariantKeys } from "../transform/negotiate.ts";
import type { OutputFormat } from "../transform/negotiate.ts";
import type { TransformOptions } from "../transform/options.ts";
import type { WorkLimiter } from "../transform/limiter.ts";
import type { Transformer } from "../transform/pipeline.ts";
import type { ClusterCoalescer } from "./cluster-coalesce.ts";
import { Coalescer } from "./coalesce.ts";
import type { Flight } from "./coalesce.ts";
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
}

interface Produced {
  readonly variant: Variant;
  readonly timings: Timings;
  /** Found in a tier below memory (disk, redis). */
  readonly hitTier?: string;
  /** Another instance produced it while this one waited (cluster-wide coalescing). */
  readonly isClusterWaited?: boolean;
  /** Produced here and kept by some tier (memory refuses entries over --cache-max-entry-bytes). */
  readonly isStored?: boolean;
}

export interface ImageProxyDeps {
  readonly fetcher: Fetcher;
  /** Remote mode (`/img?url=`), when --allowed-sources is set. */
  readonly remote?: { fetchUrl(url: string, signal?: AbortSignal, onSize?: SizeListener): Promise<Buffer> } | undefined;
  readonly originals: MemoryCache;
  readonly variants: MemoryCache;
  readonly transformer: Transformer;
  readonly stats: ProxyStats;
  readonly limits: { readonly maxOutputDimension: number; readonly allowSvg: boolean };
  readonly negativeTtlSeconds: number;
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
 * An original as a cache entry. Its ETag is needed only when the original itself is served or stored in a lower tier,
 * so it is computed on first use: hashing a 3 MB original (~2 ms) stays off the path to its first variant.
 */
function originalVariant(body: Buffer, format: ImageFormat): Variant {
  let etag: string | undefined;
  return {
    body,
    format,
    originalBytes: body.byteLength,
    get etag(): string {
      return (etag ??= etagOf(body));
    },
  };
}

/**
 * getVariant(): cache → (coalesced) origin fetch → (coalesced) transform → store. Originals and variants live in
 * separate byte-bounded LRUs, so ten sizes of one image cost one origin fetch and variants cannot be flushed by a
 * stream of large originals.
 */
export class ImageProxy {
  readonly #deps: ImageProxyDeps;
  readonly #originalFlights = new Coalescer<Produced>();
  readonly #variantFlights = new Coalescer<Produced>();
  readonly #notFound: LRUCache<string, ProxyError> | undefined;
  readonly #variantKeys: VariantKeys;
  /** Expected size of the next original (an average of recent ones): what a download reserves before it starts. */
  #expectedOriginalBytes = INITIAL_EXPECTED_ORIGINAL_BYTES;
  /** Key matchers of the purges under way (usually none). */
  readonly #purges = new Set<(key: string) => boolean>();

  constructor(deps: ImageProxyDeps) {
    this.#deps = deps;
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
   * The memory tier alone, synchronously: the hot path (a hit) allocates no promise and awaits nothing. Undefined on
   * a memory miss; then call get().
   */
  lookup(request: ImageRequest): ProxyResult | undefined {
    if (request.options === null) {
      const cached = this.#deps.originals.get(originalKey(request.path));
      if (!cached) return undefined;
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
    if (!cached) return undefined;
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

  /** The memory tier, then (on a miss) the lower tiers, the cluster and the origin. */
  async get(request: ImageRequest): Promise<ProxyResult> {
    const hit = this.lookup(request);
    if (hit) return hit;
    if (request.options === null) {
      const { promise, joined } = this.#original(request.path);
      return this.#result(await promise, joined, false);
    }

    const options = request.options;
    const { format, canonical } = this.#variantKeys.resolve(options, request.accept);
    const key = variantCacheKey(request.path, canonical);
    const varyAccept = options.format === "auto";
    const { stats } = this.#deps;
    const { promise, joined } = this.#variantFlights.run(key, (flight) => {
      const shouldStore = this.#shouldStoreFor(key, flight);
      return this.#throughTiers(key, this.#deps.variants, shouldStore, () =>
        this.#produceVariant(key, request.path, options, format, shouldStore),
      );
    });
    if (joined) stats.coalesced++;
    return this.#result(await promise, joined, varyAccept);
  }

  /** A memory miss answered: from a lower tier (a hit), or produced here or by another instance (a miss). */
  #result(produced: Produced, joined: boolean, varyAccept: boolean): ProxyResult {
    const isHit = produced.hitTier !== undefined;
    if (isHit) this.#deps.stats.hits++;
    else this.#deps.stats.misses++;
    const collapsed = joined || produced.isClusterWaited === true;
    return {
      variant: produced.variant,
      cacheStatus: isHit ? "hit" : "miss",
      collapsed,
      varyAccept,
      isStored: !isHit && !collapsed && produced.isStored === true,
      timings: produced.timings,
    };
  }

  async #produceVariant(
    key: string,
    path: string,
    options: TransformOptions,
    format: OutputFormat,
    shouldStore: ShouldStore,
  ): Promise<Produced> {
    const original = await this.#getOriginal(path);
    const result = await this.#deps.transformer.transform(original.variant.body, options, format);
    const variant: Variant = {
      body: result.body,
      format: result.format,
      etag: etagOf(result.body),
      width: result.width,
      height: result.height,
      originalBytes: original.variant.originalBytes,
    };
    return {
      variant,
      timings: { ...original.timings, queueMs: result.queueMs, transformMs: result.transformMs },
      isStored: shouldStore() && this.#deps.variants.set(key, variant),
    };
  }

  /**
   * After a memory miss: the lower tiers (a hit there is promoted to memory), else produce (coalesced across the
   * cluster when Redis is configured) and store in every tier. Without lower tiers this is just `produce()`.
   */
  async #throughTiers(
    key: string,
    memory: MemoryCache,
    shouldStore: ShouldStore,
    produce: () => Promise<Produced>,
  ): Promise<Produced> {
    const { lower, cluster } = this.#deps;
    if (!lower) return produce();
    const lookup = async (): Promise<Produced | undefined> => {
      const hit = await lower.get(key, shouldStore);
      if (!hit) return undefined;
      if (shouldStore()) memory.set(key, hit.variant);
      return { variant: hit.variant, timings: {}, hitTier: hit.tier };
    };
    const found = await lookup();
    if (found) return found;
    const produceAndStore = async (): Promise<{ result: Produced; isShared: boolean }> => {
      const result = await produce();
      if (!shouldStore()) return { result, isShared: false };
      const { isStored, isShared } = await lower.set(key, result.variant);
      if (shouldStore()) return { result: isStored ? { ...result, isStored } : result, isShared };
      // A purge arrived while the entry was being written. This instance's own purges catch such writes (the disk
      // tier cancels them, Redis runs the SET before the purge's SCAN), but another instance's SCAN may have passed
      // the key before our SET landed: take the entry back out.
      await lower.delete(key);
      return { result: { ...result, isStored: false }, isShared: false };
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
  purge(scope: PurgeScope): Promise<number> {
    return this.#fenced(scope, async () => {
      const removed = (await this.#deps.lower?.purge(scope)) ?? 0;
      await this.#deps.announcePurge?.(scope);
      return removed + this.#purgeMemory(scope);
    });
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

  /** Memory and the negative cache; synchronous. */
  #purgeMemory(scope: PurgeScope): number {
    if (scope.kind === "all") {
      this.#notFound?.clear();
      return this.#deps.originals.clear() + this.#deps.variants.clear();
    }
    if (this.#notFound) {
      const matches = pathMatcherOf(scope);
      for (const path of [...this.#notFound.keys()]) if (matches(path)) this.#notFound.delete(path);
    }
    const matches = keyMatcherOf(scope);
    return this.#deps.originals.deleteWhere(matches) + this.#deps.variants.deleteWhere(matches);
  }

  /** The original from cache, or fetched once however many callers ask. */
  async #getOriginal(path: string): Promise<Produced> {
    const cached = this.#deps.originals.get(originalKey(path));
    if (cached) return { variant: cached, timings: {} };
    return this.#original(path).promise;
  }

  #original(path: string): { promise: Promise<Produced>; joined: boolean } {
    const key = originalKey(path);
    const run = this.#originalFlights.run(key, (flight) => {
      const shouldStore = this.#shouldStoreFor(key, flight);
      return this.#throughTiers(key, this.#deps.originals, shouldStore, () => this.#fetchOriginal(path, shouldStore));
    });
    if (run.joined) this.#deps.stats.coalesced++;
    return run;
  }

  async #fetchOriginal(path: string, shouldStore: ShouldStore): Promise<Produced> {
    const { stats, fetcher } = this.#deps;
    const remembered = this.#notFound?.get(path);
    if (remembered) {
      stats.negativeHits++;
      throw remembered;
    }
    let started = performance.now();
    let body: Buffer;
    const { remote, fetchLimiter, memory } = this.#deps;
    const download = (): Promise<Buffer> => {
      started = performance.now(); // after any wait for a fetch slot
      stats.originFetches++;
      if (!path.includes("//")) return fetcher.fetchOriginal(path, undefined, onSize);
      if (remote) return remote.fetchUrl(path, undefined, onSize);
      throw new ProxyError("FORBIDDEN", "remote sources are not enabled on this proxy");
    };
    // The memory lease covers the download (refusals are counted by the budget): the expected size until the origin
    // declares one, then that, growing with the bytes if it lied or declared none. Once the body is here it is held
    // by the cache or by the transforms that use it, whose leases count it.
    const lease = await memory?.admit(this.#expectedOriginalBytes);
    const onSize = lease ? (bytes: number): void => lease.resize(bytes) : undefined;
    try {
      body = fetchLimiter ? (await fetchLimiter.run(download)).value : await download();
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
    this.#expectedOriginalBytes += (body.byteLength - this.#expectedOriginalBytes) / 8;
    const originMs = performance.now() - started;
    const format = this.#checkFormat(body);
    const variant = originalVariant(body, format);
    return {
      variant,
      timings: { originMs },
      isStored: shouldStore() && this.#deps.originals.set(originalKey(path), variant),
    };
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
