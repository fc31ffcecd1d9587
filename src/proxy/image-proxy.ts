import { LRUCache } from "lru-cache";
import { createHash } from "node:crypto";
import type { MemoryCache } from "../cache/memory-cache.ts";
import type { TieredCache } from "../cache/tiered-cache.ts";
import type { Variant } from "../cache/tier.ts";
import { isKeyOfPath, originalKey, variantCacheKey } from "../cache/cache-key.ts";
import { ProxyError } from "../errors.ts";
import type { Fetcher } from "../fetcher/fetcher.ts";
import { sniffImageFormat } from "../image-format.ts";
import type { ImageFormat } from "../image-format.ts";
import { VariantKeys } from "../transform/negotiate.ts";
import type { OutputFormat } from "../transform/negotiate.ts";
import type { TransformOptions } from "../transform/options.ts";
import type { WorkLimiter } from "../transform/limiter.ts";
import type { Transformer } from "../transform/pipeline.ts";
import type { ClusterCoalescer } from "./cluster-coalesce.ts";
import { Coalescer } from "./coalesce.ts";
import type { ProxyStats } from "./stats.ts";

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
  readonly timings: Timings;
}

interface Produced {
  readonly variant: Variant;
  readonly timings: Timings;
  /** Found in a tier below memory (disk, redis). */
  readonly hitTier?: string;
  /** Another instance produced it while this one waited (cluster-wide coalescing). */
  readonly isClusterWaited?: boolean;
}

export interface ImageProxyDeps {
  readonly fetcher: Fetcher;
  /** Remote mode (`/img?url=`), when --allowed-sources is set. */
  readonly remote?: { fetchUrl(url: string): Promise<Buffer> } | undefined;
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
  readonly announcePurge?: ((path: string | null) => Promise<void>) | undefined;
}

const NO_TIMINGS: Timings = Object.freeze({});

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
      return { variant: cached, cacheStatus: "hit", collapsed: false, varyAccept: false, timings: NO_TIMINGS };
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
    const { promise, joined } = this.#variantFlights.run(key, () =>
      this.#throughTiers(key, this.#deps.variants, () => this.#produceVariant(key, request.path, options, format)),
    );
    if (joined) stats.coalesced++;
    return this.#result(await promise, joined, varyAccept);
  }

  /** A memory miss answered: from a lower tier (a hit), or produced here or by another instance (a miss). */
  #result(produced: Produced, joined: boolean, varyAccept: boolean): ProxyResult {
    const isHit = produced.hitTier !== undefined;
    if (isHit) this.#deps.stats.hits++;
    else this.#deps.stats.misses++;
    return {
      variant: produced.variant,
      cacheStatus: isHit ? "hit" : "miss",
      collapsed: joined || produced.isClusterWaited === true,
      varyAccept,
      timings: produced.timings,
    };
  }

  async #produceVariant(key: string, path: string, options: TransformOptions, format: OutputFormat): Promise<Produced> {
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
    this.#deps.variants.set(key, variant);
    return { variant, timings: { ...original.timings, queueMs: result.queueMs, transformMs: result.transformMs } };
  }

  /**
   * After a memory miss: the lower tiers (a hit there is promoted to memory), else produce (coalesced across the
   * cluster when Redis is configured) and store in every tier. Without lower tiers this is just `produce()`.
   */
  async #throughTiers(key: string, memory: MemoryCache, produce: () => Promise<Produced>): Promise<Produced> {
    const { lower, cluster } = this.#deps;
    if (!lower) return produce();
    const lookup = async (): Promise<Produced | undefined> => {
      const hit = await lower.get(key);
      if (!hit) return undefined;
      memory.set(key, hit.variant);
      return { variant: hit.variant, timings: {}, hitTier: hit.tier };
    };
    const found = await lookup();
    if (found) return found;
    const produceAndStore = async (): Promise<{ result: Produced; isShared: boolean }> => {
      const result = await produce();
      return { result, isShared: await lower.set(key, result.variant) };
    };
    if (!cluster) return (await produceAndStore()).result;
    const outcome = await cluster.run(key, lookup, produceAndStore);
    if (!outcome.waited) return outcome.result;
    this.#deps.stats.coalesced++;
    return { variant: outcome.result.variant, timings: {}, isClusterWaited: true };
  }

  /**
   * Removes the original and every variant of `path` from every tier and, with Redis, on every instance. Lower tiers
   * go first: emptying memory first would let a request in between promote the old entry back from disk or Redis.
   */
  async purge(path: string): Promise<number> {
    const removed = (await this.#deps.lower?.purgePath(path)) ?? 0;
    await this.#deps.announcePurge?.(path);
    return removed + this.purgeLocal(path);
  }

  async purgeAll(): Promise<number> {
    const removed = (await this.#deps.lower?.purgeAll()) ?? 0;
    await this.#deps.announcePurge?.(null);
    return removed + this.purgeLocal(null);
  }

  /** Memory only (null: everything); synchronous. */
  purgeLocal(path: string | null): number {
    if (path === null) {
      this.#notFound?.clear();
      return this.#deps.originals.clear() + this.#deps.variants.clear();
    }
    this.#notFound?.delete(path);
    const matches = (key: string): boolean => isKeyOfPath(key, path);
    return this.#deps.originals.deleteWhere(matches) + this.#deps.variants.deleteWhere(matches);
  }

  /** Another instance purged `path`: drop it from memory and local tiers (it already emptied the shared ones). */
  async applyRemotePurge(path: string | null): Promise<void> {
    if (path === null) await this.#deps.lower?.purgeAll(true);
    else await this.#deps.lower?.purgePath(path, true);
    this.purgeLocal(path);
  }

  /** The original from cache, or fetched once however many callers ask. */
  async #getOriginal(path: string): Promise<Produced> {
    const cached = this.#deps.originals.get(originalKey(path));
    if (cached) return { variant: cached, timings: {} };
    return this.#original(path).promise;
  }

  #original(path: string): { promise: Promise<Produced>; joined: boolean } {
    const flight = this.#originalFlights.run(path, () =>
      this.#throughTiers(originalKey(path), this.#deps.originals, () => this.#fetchOriginal(path)),
    );
    if (flight.joined) this.#deps.stats.coalesced++;
    return flight;
  }

  async #fetchOriginal(path: string): Promise<Produced> {
    const { stats, fetcher } = this.#deps;
    const remembered = this.#notFound?.get(path);
    if (remembered) {
      stats.negativeHits++;
      throw remembered;
    }
    let started = performance.now();
    let body: Buffer;
    const { remote, fetchLimiter } = this.#deps;
    const download = (): Promise<Buffer> => {
      started = performance.now(); // after any wait for a fetch slot
      stats.originFetches++;
      if (!path.includes("//")) return fetcher.fetchOriginal(path);
      if (remote) return remote.fetchUrl(path);
      throw new ProxyError("FORBIDDEN", "remote sources are not enabled on this proxy");
    };
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
      if (error instanceof ProxyError && error.code === "ORIGIN_NOT_FOUND") this.#notFound?.set(path, error);
      throw error;
    }
    const originMs = performance.now() - started;
    const format = this.#checkFormat(body);
    const variant = originalVariant(body, format);
    this.#deps.originals.set(originalKey(path), variant);
    return { variant, timings: { originMs } };
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
