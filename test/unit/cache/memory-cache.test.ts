import { describe, expect, it } from "vitest";
import { ENTRY_OVERHEAD_BYTES, MemoryCache, entrySize } from "../../../src/cache/memory-cache.ts";
import type { Variant } from "../../../src/cache/tier.ts";
import { testSource } from "../../helpers/entries.ts";

const variant = (bytes: number): Variant => ({
  body: Buffer.alloc(bytes),
  format: "jpeg",
  etag: '"x"',
  originalBytes: bytes,
  source: testSource(),
});

describe("MemoryCache", () => {
  it("evicts least recently used entries first and never exceeds its byte budget", () => {
    const size = entrySize("k0", variant(1000));
    const cache = new MemoryCache({ name: "t", maxBytes: size * 3, maxEntryBytes: size * 3, ttlSeconds: 0 });
    cache.set("k0", variant(1000));
    cache.set("k1", variant(1000));
    cache.set("k2", variant(1000));
    cache.get("k0"); // k1 is now the coldest
    cache.set("k3", variant(1000));
    expect(cache.keys().sort()).toEqual(["k0", "k2", "k3"]);
    expect(cache.stats()).toMatchObject({ entries: 3, bytes: size * 3, evictions: 1 });
    cache.set("k4", variant(2000)); // needs two slots: evicts the two coldest
    expect(cache.has("k2")).toBe(false);
    expect(cache.has("k0")).toBe(false);
    expect(cache.stats().bytes).toBeLessThanOrEqual(size * 3);
    expect(cache.stats().bytes).toBe(cache.recount());
  });

  it("serves but does not keep entries above the per-entry cap", () => {
    const cache = new MemoryCache({ name: "t", maxBytes: 1_000_000, maxEntryBytes: 5000, ttlSeconds: 0 });
    expect(cache.set("big", variant(10_000))).toBe(false); // the proxy reports it (no Cache-Status "stored")
    expect(cache.has("big")).toBe(false);
    expect(cache.stats().bytes).toBe(0);
    expect(cache.set("small", variant(100))).toBe(true);
    expect(cache.stats().bytes).toBe(100 + "small".length + ENTRY_OVERHEAD_BYTES);
  });

  it("expires entries after their TTL on the injected clock", () => {
    let now = 1_000; // lru-cache treats a start time of 0 as "no TTL": real clocks never read 0
    const cache = new MemoryCache({
      name: "t",
      maxBytes: 1_000_000,
      maxEntryBytes: 1_000_000,
      ttlSeconds: 10,
      now: () => now,
    });
    cache.set("a", variant(10));
    now += 9_999;
    expect(cache.get("a")).toBeDefined();
    now += 2;
    expect(cache.get("a")).toBeUndefined();
    expect(cache.stats().bytes).toBe(0);
  });

  it("replacing an entry keeps the accounting exact", () => {
    const cache = new MemoryCache({ name: "t", maxBytes: 1_000_000, maxEntryBytes: 1_000_000, ttlSeconds: 0 });
    for (let i = 0; i < 1000; i++) cache.set(`k${i % 37}`, variant(i));
    expect(cache.stats().bytes).toBe(cache.recount());
    expect(cache.deleteWhere((key) => key.endsWith("1"))).toBeGreaterThan(0);
    expect(cache.stats().bytes).toBe(cache.recount());
  });

  it("is disabled by a zero budget", () => {
    const cache = new MemoryCache({ name: "t", maxBytes: 0, maxEntryBytes: 10, ttlSeconds: 0 });
    cache.set("a", variant(1));
    expect(cache.get("a")).toBeUndefined();
  });
});
