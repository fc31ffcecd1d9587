import { bench, describe } from "vitest";
import { MemoryCache } from "../../src/cache/memory-cache.ts";
import { NO_CACHING } from "../../src/fetcher/fetcher.ts";
import type { Fetcher, OriginReply } from "../../src/fetcher/fetcher.ts";
import { ImageProxy } from "../../src/proxy/image-proxy.ts";
import type { ImageRequest } from "../../src/proxy/image-proxy.ts";
import { ProxyStats } from "../../src/proxy/stats.ts";
import { parseTransformOptions } from "../../src/transform/options.ts";
import { Transformer } from "../../src/transform/pipeline.ts";
import sharp from "sharp";

// The hot path of a cached image: ImageProxy.lookup() on a memory hit (since issue 20 it also reads the entry's
// Source to check freshness). `npx vitest bench --run bench/micro/lookup.bench.ts`
const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: "#3a7" } })
  .jpeg()
  .toBuffer();
const fetcher: Fetcher = {
  description: "memory://bench",
  fetchOriginal: (): Promise<OriginReply> => Promise.resolve({ status: 200, body: jpeg, caching: NO_CACHING }),
  checkReady: () => Promise.resolve(),
  close: () => Promise.resolve(),
};
const memory = { maxBytes: 64 * 1024 * 1024, maxEntryBytes: 1024 * 1024, ttlSeconds: 0 };
const proxy = new ImageProxy({
  fetcher,
  originals: new MemoryCache({ name: "originals", ...memory }),
  variants: new MemoryCache({ name: "variants", ...memory }),
  transformer: new Transformer({
    maxSourcePixels: 50_000_000,
    maxOutputDimension: 8192,
    maxAnimationFrames: 1,
    concurrency: 1,
    queue: 8,
    timeoutMs: 15_000,
    avifEffort: 0,
    allowSvg: false,
  }),
  stats: new ProxyStats(),
  limits: { maxOutputDimension: 8192, allowSvg: false },
  negativeTtlSeconds: 0,
  freshness: {
    ttlSeconds: 3600,
    staleWhileRevalidateSeconds: 60,
    staleIfErrorSeconds: 86_400,
    isOriginCacheControlRespected: true,
  },
});
const original: ImageRequest = { path: "photos/beach.jpg", options: null, accept: undefined };
const variant: ImageRequest = {
  path: "photos/beach.jpg",
  options: parseTransformOptions(new URLSearchParams("w=32&f=webp"), { maxOutputDimension: 8192 }),
  accept: "image/avif,image/webp,*/*",
};
await proxy.get(original);
await proxy.get(variant);
if (!proxy.lookup(original) || !proxy.lookup(variant)) throw new Error("not cached");

describe("ImageProxy.lookup (a memory hit)", () => {
  bench("an original", () => {
    proxy.lookup(original);
  });
  bench("a variant (w=32&f=webp)", () => {
    proxy.lookup(variant);
  });
});
