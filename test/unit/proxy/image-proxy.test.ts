import { beforeAll, describe, expect, it } from "vitest";
import { MemoryCache } from "../../../src/cache/memory-cache.ts";
import { ProxyError } from "../../../src/errors.ts";
import { NO_CACHING } from "../../../src/fetcher/fetcher.ts";
import type { Fetcher, OriginReply } from "../../../src/fetcher/fetcher.ts";
import { ImageProxy } from "../../../src/proxy/image-proxy.ts";
import type { ImageRequest, ProxyResult } from "../../../src/proxy/image-proxy.ts";
import { ProxyStats } from "../../../src/proxy/stats.ts";
import { parseTransformOptions } from "../../../src/transform/options.ts";
import { Transformer } from "../../../src/transform/pipeline.ts";
import { imageFacts, makeJpeg } from "../../helpers/images.ts";
import { transformConfig } from "../transform/images.ts";

/**
 * Originals from a map. While `isHolding`, each fetch takes the bytes the map has when it is asked (like an origin
 * that has started answering) but resolves only at release(), so a test can act while the fetch is in flight.
 */
class MemoryFetcher implements Fetcher {
  readonly description = "memory://test";
  readonly files = new Map<string, Buffer>();
  /** Paths asked for, in order. */
  readonly requests: string[] = [];
  isHolding = false;
  #held: (() => void)[] = [];

  fetchOriginal(path: string): Promise<OriginReply> {
    this.requests.push(path);
    const body = this.files.get(path);
    const answer = (): Promise<OriginReply> =>
      body
        ? Promise.resolve({ status: 200, body, caching: NO_CACHING })
        : Promise.reject(new ProxyError("ORIGIN_NOT_FOUND", `no ${path}`));
    if (!this.isHolding) return answer();
    return new Promise((resolve, reject) => this.#held.push(() => void answer().then(resolve, reject)));
  }

  /** Answers every held fetch. */
  release(): void {
    for (const answer of this.#held.splice(0)) answer();
  }

  get heldCount(): number {
    return this.#held.length;
  }

  checkReady(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const transformer = new Transformer(transformConfig());
let wide: Buffer; // 400x200
let square: Buffer; // 300x300: at w=80, 80 px high where `wide` gives 40

beforeAll(async () => {
  wide = await makeJpeg(400, 200, 1);
  square = await makeJpeg(300, 300, 2);
});

function setUp(options: { maxEntryBytes?: number; negativeTtlSeconds?: number; now?: () => number } = {}) {
  const fetcher = new MemoryFetcher();
  const memory = { maxBytes: 10 * 1024 * 1024, maxEntryBytes: options.maxEntryBytes ?? 1024 * 1024, ttlSeconds: 0 };
  const originals = new MemoryCache({ name: "originals", ...memory });
  const variants = new MemoryCache({ name: "variants", ...memory });
  const stats = new ProxyStats();
  const proxy = new ImageProxy({
    fetcher,
    originals,
    variants,
    transformer,
    stats,
    limits: { maxOutputDimension: 4096, allowSvg: false },
    negativeTtlSeconds: options.negativeTtlSeconds ?? 0,
    ...(options.now ? { now: options.now } : {}),
  });
  return { fetcher, originals, variants, stats, proxy };
}

function request(path: string, query = ""): ImageRequest {
  return {
    path,
    options: query === "" ? null : parseTransformOptions(new URLSearchParams(query), { maxOutputDimension: 4096 }),
    accept: undefined,
  };
}

async function heightOf(result: ProxyResult): Promise<number | undefined> {
  return (await imageFacts(result.variant.body)).height;
}

/** Lets every queued promise callback run (the proxy awaits a few steps before it asks the fetcher). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe("ImageProxy: coalescing", () => {
  it("answers N concurrent gets of one variant with one fetch and one transform", async () => {
    const { fetcher, proxy, stats } = setUp();
    fetcher.files.set("a.jpg", wide);
    fetcher.isHolding = true;
    const transformsBefore = transformer.stats().transforms;
    const gets = Array.from({ length: 25 }, () => proxy.get(request("a.jpg", "w=80&f=webp")));
    await settle();
    fetcher.release();
    const results = await Promise.all(gets);
    expect(fetcher.requests).toEqual(["a.jpg"]);
    expect(transformer.stats().transforms - transformsBefore).toBe(1);
    expect(new Set(results.map((r) => r.variant.etag)).size).toBe(1);
    expect(results.filter((r) => r.collapsed)).toHaveLength(24);
    expect(results.filter((r) => r.isStored)).toHaveLength(1); // the one that produced it
    expect(stats).toMatchObject({ misses: 25, coalesced: 24, originFetches: 1 });
    expect(proxy.lookup(request("a.jpg", "w=80&f=webp"))?.cacheStatus).toBe("hit");
  });

  it("fetches an original once for concurrent gets of different variants and of the original itself", async () => {
    const { fetcher, proxy } = setUp();
    fetcher.files.set("a.jpg", wide);
    fetcher.isHolding = true;
    const gets = [proxy.get(request("a.jpg")), ...[40, 60, 80].map((w) => proxy.get(request("a.jpg", `w=${w}`)))];
    await settle();
    fetcher.release();
    const results = await Promise.all(gets);
    expect(fetcher.requests).toEqual(["a.jpg"]);
    expect(results[0]!.variant.body.equals(wide)).toBe(true);
    expect(await Promise.all(results.slice(1).map(heightOf))).toEqual([20, 30, 40]);
  });
});

describe("ImageProxy: negative cache", () => {
  it("remembers a 404 for its TTL on the injected clock, then asks the origin again", async () => {
    let now = 1_000; // lru-cache reads a start time of 0 as "no TTL"
    const { fetcher, proxy, stats } = setUp({ negativeTtlSeconds: 10, now: () => now });
    await expect(proxy.get(request("gone.jpg", "w=50"))).rejects.toMatchObject({ code: "ORIGIN_NOT_FOUND" });
    await expect(proxy.get(request("gone.jpg", "w=60"))).rejects.toMatchObject({ code: "ORIGIN_NOT_FOUND" });
    expect(fetcher.requests).toEqual(["gone.jpg"]);
    expect(stats.negativeHits).toBe(1);
    now += 10_001;
    fetcher.files.set("gone.jpg", wide);
    expect((await proxy.get(request("gone.jpg", "w=50"))).cacheStatus).toBe("miss");
    expect(fetcher.requests).toEqual(["gone.jpg", "gone.jpg"]);
  });

  it("forgets a remembered 404 when its path is purged", async () => {
    const { fetcher, proxy } = setUp({ negativeTtlSeconds: 60 });
    await expect(proxy.get(request("soon.jpg"))).rejects.toMatchObject({ code: "ORIGIN_NOT_FOUND" });
    fetcher.files.set("soon.jpg", wide);
    await proxy.purge({ kind: "prefix", prefix: "so" });
    expect((await proxy.get(request("soon.jpg"))).variant.body.equals(wide)).toBe(true);
  });

  it("does not remember a 404 fetched while a purge of its path ran", async () => {
    const { fetcher, proxy } = setUp({ negativeTtlSeconds: 60 });
    fetcher.isHolding = true;
    const missing = proxy.get(request("late.jpg"));
    await settle();
    await proxy.purge({ kind: "path", path: "late.jpg" });
    fetcher.files.set("late.jpg", wide); // uploaded, then purged: the 404 in flight is out of date
    fetcher.release();
    await expect(missing).rejects.toMatchObject({ code: "ORIGIN_NOT_FOUND" });
    fetcher.isHolding = false;
    expect((await proxy.get(request("late.jpg"))).variant.body.equals(wide)).toBe(true);
  });
});

describe("ImageProxy: purge during a fetch", () => {
  it("answers the waiters with what they asked for, stores none of it, and fetches again for later requests", async () => {
    const { fetcher, proxy, originals, variants } = setUp();
    fetcher.files.set("p.jpg", wide);
    fetcher.isHolding = true;
    const before = [proxy.get(request("p.jpg", "w=80")), proxy.get(request("p.jpg", "w=80"))];
    await settle();
    expect(fetcher.heldCount).toBe(1);
    await proxy.purge({ kind: "path", path: "p.jpg" });
    fetcher.files.set("p.jpg", square); // the origin's new bytes
    const after = proxy.get(request("p.jpg", "w=80"));
    await settle();
    expect(fetcher.requests).toEqual(["p.jpg", "p.jpg"]); // not a seat on the old flight
    fetcher.release();

    const [first, joined] = await Promise.all(before);
    expect([await heightOf(first!), await heightOf(joined!)]).toEqual([40, 40]);
    expect([first!.isStored, joined!.collapsed]).toEqual([false, true]);
    const fresh = await after;
    expect(await heightOf(fresh)).toBe(80);
    expect(fresh.isStored).toBe(true);
    expect(originals.get("o:p.jpg")?.body.equals(square)).toBe(true);
    expect(variants.keys()).toHaveLength(1);
    expect(await heightOf(proxy.lookup(request("p.jpg", "w=80"))!)).toBe(80);
  });

  it("fences only the flights the purge names", async () => {
    const { fetcher, proxy } = setUp();
    for (const path of ["keep/a.jpg", "drop/a.jpg", "drop/b.jpg"]) fetcher.files.set(path, wide);
    fetcher.isHolding = true;
    const gets = ["keep/a.jpg", "drop/a.jpg", "drop/b.jpg"].map((path) => proxy.get(request(path, "w=40")));
    await settle();
    await proxy.purge({ kind: "prefix", prefix: "drop/" });
    fetcher.release();
    const results = await Promise.all(gets);
    expect(results.map((r) => r.isStored)).toEqual([true, false, false]);
    expect(proxy.lookup(request("keep/a.jpg", "w=40"))).toBeDefined();
    expect(proxy.lookup(request("drop/a.jpg", "w=40"))).toBeUndefined();
  });

  it("reports a miss as not stored when memory refuses it", async () => {
    const { fetcher, proxy } = setUp({ maxEntryBytes: 1024 });
    fetcher.files.set("a.jpg", wide);
    const big = await proxy.get(request("a.jpg", "w=300&f=png"));
    expect([big.cacheStatus, big.isStored]).toEqual(["miss", false]);
    const small = await proxy.get(request("a.jpg", "w=4&f=webp"));
    expect([small.cacheStatus, small.isStored]).toEqual(["miss", true]);
  });
});
