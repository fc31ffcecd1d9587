import { LRUCache } from "lru-cache";
import { createHash } from "node:crypto";
import { keyMatcherOf, originalKey, pathMatcherOf } from "../cache/cache-key.ts";
import type { PurgeScope } from "../cache/cache-key.ts";
import { Source } from "../cache/source.ts";
import type { Variant } from "../cache/tier.ts";
import { ProxyError } from "../errors.ts";
import type { OriginCaching, OriginReply, SizeListener, Validators } from "../fetcher/fetcher.ts";
import { sniffImageFormat } from "../shared/image-format.ts";
import type { ImageFormat } from "../shared/image-format.ts";
import type { Coalescer } from "./coalesce.ts";
import type { FreshnessPolicy, ImageProxyDeps, Produced, Timings } from "./image-proxy.ts";
import { isStorable } from "./lower-tiers.ts";
import type { LowerTiers } from "./lower-tiers.ts";
import type { PurgeFence, ShouldStore } from "./purge-fence.ts";
import type { SourceRegistry } from "./source-registry.ts";

/** Before any original has been seen: a 4K JPEG is 2-8 MB. */
const INITIAL_EXPECTED_ORIGINAL_BYTES = 4 * 1024 * 1024;
const DEFAULT_FRESHNESS: FreshnessPolicy = {
  ttlSeconds: 0,
  staleWhileRevalidateSeconds: 0,
  staleIfErrorSeconds: 0,
  isOriginCacheControlRespected: true,
};

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
export function isOriginFailure(error: unknown): error is ProxyError {
  return error instanceof ProxyError && (error.code === "ORIGIN_FAILED" || error.code === "ORIGIN_TIMEOUT");
}

/** What Originals shares with the rest of the proxy, which builds it. */
export interface OriginalsParts {
  /** The flights of originals (the proxy's purge fence abandons them with the variants' ones). */
  readonly flights: Coalescer<Produced>;
  readonly fence: PurgeFence;
  readonly tiers: LowerTiers;
  /** The versions this process knows (shared with the lower tiers, which join the entries they read to them). */
  readonly sources: SourceRegistry;
  /** The proxy's purge (fenced, every tier, every instance): how a replaced original's variants are dropped. */
  readonly purge: (scope: PurgeScope) => Promise<unknown>;
}

/**
 * The originals: getting one (memory, the lower tiers, the origin, coalesced per original and cluster-wide), keeping
 * it fresh (conditional requests, RFC 9110/9111; stale-while-revalidate and stale-if-error, RFC 5861), downloading it
 * (through the fetch limiter, the memory budget and the negative cache) and storing it in every tier. Each original's
 * Source is the version every entry made from its bytes points at (see ImageProxy).
 */
export class Originals {
  readonly #deps: ImageProxyDeps;
  readonly #flights: Coalescer<Produced>;
  readonly #fence: PurgeFence;
  readonly #tiers: LowerTiers;
  readonly #sources: SourceRegistry;
  readonly #purge: (scope: PurgeScope) => Promise<unknown>;
  readonly #notFound: LRUCache<string, ProxyError> | undefined;
  readonly #now: () => number;
  readonly #policy: FreshnessPolicy;
  /** Freshness when the origin gives none: --cache-ttl-seconds, or until evicted. */
  readonly #defaultLifetimeMs: number;
  /** Expected size of the next original (an average of recent ones): what a download reserves before it starts. */
  #expectedOriginalBytes = INITIAL_EXPECTED_ORIGINAL_BYTES;

  constructor(deps: ImageProxyDeps, parts: OriginalsParts) {
    this.#deps = deps;
    this.#flights = parts.flights;
    this.#fence = parts.fence;
    this.#tiers = parts.tiers;
    this.#sources = parts.sources;
    this.#purge = parts.purge;
    this.#now = deps.now ?? Date.now;
    this.#policy = deps.freshness ?? DEFAULT_FRESHNESS;
    this.#defaultLifetimeMs = this.#policy.ttlSeconds > 0 ? this.#policy.ttlSeconds * 1000 : Infinity;
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
   * The original to make a new variant from: fresh from memory, or stale within --stale-while-revalidate-seconds
   * (revalidated in the background), else from the original's flight (lower tiers, the origin).
   */
  async get(path: string): Promise<Produced> {
    const cached = this.#deps.originals.get(originalKey(path));
    if (cached && !cached.source.isReplaced) {
      const staleMs = this.#now() - cached.source.freshUntilMs;
      if (staleMs < 0) return { variant: cached, timings: {} };
      if (this.mayServeWhileRevalidating(cached.source, staleMs)) {
        this.revalidateInBackground(path);
        return { variant: cached, timings: {} };
      }
    }
    const run = this.flight(path, true);
    const original = await run.promise;
    if (run.joined) this.#deps.stats.coalesced++;
    if (original.revalidation === undefined && !(original.variant.source.freshUntilMs > this.#now()))
      this.revalidateInBackground(path); // a stale copy from a lower tier, within stale-while-revalidate
    return original;
  }

  /**
   * The flight of `path`'s original: a fresh copy at hand, else one from the origin, asked conditionally when a stale
   * copy is at hand; at most one per original in this process (and with Redis in the cluster). `mayAnswerStale`: a
   * stale copy found on disk or in Redis within --stale-while-revalidate-seconds is answered as it is (the caller
   * revalidates in the background); background revalidations pass false.
   */
  flight(path: string, mayAnswerStale: boolean): { promise: Promise<Produced>; joined: boolean } {
    const key = originalKey(path);
    return this.#flights.run(key, (flight) =>
      this.#obtainOriginal(path, key, this.#fence.shouldStoreFor(key, flight), mayAnswerStale),
    );
  }

  /** One revalidation of `path`'s original, detached (coalesced with any under way); failures are counted, not thrown. */
  revalidateInBackground(path: string): void {
    this.flight(path, false).promise.catch(() => undefined);
  }

  mayServeWhileRevalidating(source: Source, staleMs: number): boolean {
    return !source.mustRevalidate && staleMs <= this.#policy.staleWhileRevalidateSeconds * 1000;
  }

  mayServeIfError(source: Source, staleMs: number): boolean {
    return !source.mustRevalidate && staleMs <= this.#policy.staleIfErrorSeconds * 1000;
  }

  /** The originals' part of a purge in memory: their entries, the negative cache and the known versions; synchronous. */
  purgeMemory(scope: PurgeScope): number {
    if (scope.kind === "all") {
      this.#notFound?.clear();
      this.#sources.deleteWhere(() => true);
      return this.#deps.originals.clear();
    }
    if (scope.kind !== "variants") {
      const matches = pathMatcherOf(scope);
      if (this.#notFound) for (const path of [...this.#notFound.keys()]) if (matches(path)) this.#notFound.delete(path);
      this.#sources.deleteWhere(matches);
    }
    return this.#deps.originals.deleteWhere(keyMatcherOf(scope));
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
      const hit = await this.#tiers.hit(key, path, originals, shouldStore);
      if (hit) {
        const staleMs = this.#now() - hit.variant.source.freshUntilMs;
        if (staleMs < 0 || (mayAnswerStale && this.mayServeWhileRevalidating(hit.variant.source, staleMs))) return hit;
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
        const hit = await this.#tiers.hit(key, path, originals, shouldStore);
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
        this.mayServeIfError(stale.source, this.#now() - stale.source.freshUntilMs)
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
    const { reply, originMs } = await this.#downloadFor(path, stale, shouldStore);
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
      const validated = stale ? { hitTier: tier, revalidation: { kind: "validated" as const, fwdStatus: 200 } } : {};
      return this.#storeDownloaded(key, original, timings, shouldStore, validated);
    }
    const freshness = this.#freshnessOf(reply.caching, now);
    const source = new Source({ etag: etag ?? (() => etagOf(body)), ...freshness });
    const original = originalVariant(body, format, source);
    // A flight a purge fenced may bring back bytes from before it: they must not become the path's version.
    if (shouldStore()) {
      if (known) await this.#replace(path, known, source);
      else this.#sources.set(path, source);
    }
    const replaced = stale ? { revalidation: { kind: "replaced" as const, fwdStatus: 200 } } : {};
    return this.#storeDownloaded(key, original, timings, shouldStore, replaced);
  }

  /**
   * #download, conditional with `stale`'s validators. A failed revalidation is counted, and an origin failure noted on
   * the stale copy's Source: until a revalidation succeeds, its entries may answer stale-if-error at once without
   * waiting for the origin again (see ImageProxy#settleStale and REVALIDATION_RETRY_MS).
   */
  async #downloadFor(
    path: string,
    stale: Variant | undefined,
    shouldStore: ShouldStore,
  ): Promise<{ reply: OriginReply; originMs: number }> {
    try {
      return await this.#download(path, stale?.source.validators, shouldStore);
    } catch (error) {
      if (stale) {
        this.#deps.stats.revalidationsFailed++;
        if (isOriginFailure(error)) {
          stale.source.noteFailure(this.#now(), fwdStatusOf(error));
        }
      }
      throw error;
    }
  }

  /** A 200's original, stored (see #storeOriginal) and answered; `staleOutcome`: what became of the stale copy, if any. */
  async #storeDownloaded(
    key: string,
    original: Variant,
    timings: Timings,
    shouldStore: ShouldStore,
    staleOutcome: Pick<Produced, "hitTier" | "revalidation">,
  ): Promise<{ result: Produced; isShared: boolean }> {
    const stored = await this.#storeOriginal(key, original, shouldStore);
    const result: Produced = {
      variant: original,
      timings,
      isStored: stored.isStored,
      originStatus: 200,
      ...staleOutcome,
    };
    return { result, isShared: stored.isShared };
  }

  /** In memory and every lower tier, unless the origin said no-store or a purge fenced this flight. */
  async #storeOriginal(
    key: string,
    original: Variant,
    shouldStore: ShouldStore,
  ): Promise<{ isStored: boolean; isShared: boolean }> {
    if (!shouldStore() || !isStorable(original)) return { isStored: false, isShared: false };
    const inMemory = this.#deps.originals.set(key, original);
    const written = await this.#tiers.store(key, original, shouldStore);
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
    await this.#purge({ kind: "variants", path });
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
export function fwdStatusOf(error: ProxyError): number {
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
