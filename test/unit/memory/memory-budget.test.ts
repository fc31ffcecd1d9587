import { describe, expect, it } from "vitest";
import { MemoryCache } from "../../../src/cache/memory-cache.ts";
import type { Variant } from "../../../src/cache/tier.ts";
import { ProxyError } from "../../../src/errors.ts";
import { MemoryBudget } from "../../../src/memory/memory-budget.ts";
import type { MemoryBudgetOptions } from "../../../src/memory/memory-budget.ts";
import { testSource } from "../../helpers/entries.ts";

const MiB = 1024 * 1024;

function variantOf(bytes: number): Variant {
  return { body: Buffer.alloc(bytes), format: "jpeg", etag: '"x"', originalBytes: bytes, source: testSource() };
}

/**
 * A budget of 100 MiB with 10 MiB margin and 20 MiB baseline: 70 MiB for caches and work. RSS is what the test says
 * it is (the process's real RSS is not the test's to control); the caches are real MemoryCaches.
 */
function setUp(overrides: Partial<MemoryBudgetOptions> = {}) {
  let rss = 20 * MiB;
  let now = 0;
  let collections = 0;
  const cache = new MemoryCache({ name: "variants", maxBytes: 60 * MiB, maxEntryBytes: 60 * MiB, ttlSeconds: 0 });
  const budget = new MemoryBudget({
    limitBytes: 100 * MiB,
    marginBytes: 10 * MiB,
    baselineBytes: 20 * MiB,
    plannedBaselineBytes: 20 * MiB,
    cacheFloorBytes: 10 * MiB,
    cacheMaxBytes: 60 * MiB,
    readRss: () => rss,
    collectGarbage: () => collections++,
    maxWaiters: 2,
    maxWaitMs: 200,
    now: () => now,
    ...overrides,
  });
  budget.addCache({ share: 1, bytes: () => cache.stats().bytes, trimTo: (max) => cache.trimTo(max) });
  const fill = (entries: number, bytesEach: number): void => {
    for (let i = 0; i < entries; i++) cache.set(`v:${i}`, variantOf(bytesEach));
    budget.fitCaches();
  };
  return {
    budget,
    cache,
    fill,
    setRss: (bytes: number) => (rss = bytes),
    advance: (ms: number) => (now += ms),
    collections: () => collections,
  };
}

describe("MemoryBudget", () => {
  it("trims the least recently used cache entries to make room for work, never below the cache floor", () => {
    const { budget, cache, fill } = setUp();
    fill(6, 10 * MiB - 1024); // ~60 MiB cached of the 70 MiB usable
    const first = budget.tryReserve(30 * MiB);
    expect(first).toBeDefined();
    expect(cache.stats().bytes).toBeLessThanOrEqual(40 * MiB);
    expect(cache.has("v:0")).toBe(false); // the oldest went first
    expect(cache.has("v:5")).toBe(true);
    // 30 MiB more would need the cache below its 10 MiB floor plus 30 MiB held: refused, the cache keeps its floor
    expect(budget.tryReserve(35 * MiB)).toBeUndefined();
    expect(cache.stats().bytes).toBeGreaterThanOrEqual(10 * MiB - 1024 * 1024);
    first?.release();
    expect(budget.stats().reservedBytes).toBe(0);
  });

  it("queues work that does not fit and starts it, in order, when a lease is released", async () => {
    const { budget } = setUp();
    const held = budget.tryReserve(50 * MiB)!; // fits: nothing cached
    const order: string[] = [];
    const a = budget.admit(40 * MiB).then((lease) => (order.push("a"), lease));
    const b = budget.admit(5 * MiB).then((lease) => (order.push("b"), lease)); // would fit, but waits behind a
    await Promise.resolve();
    expect(order).toEqual([]);
    expect(budget.stats().waiting).toBe(2);
    held.release();
    const [leaseA, leaseB] = await Promise.all([a, b]);
    expect(order).toEqual(["a", "b"]);
    expect(budget.stats().reservedBytes).toBe(45 * MiB);
    leaseA.release();
    leaseB.release();
    leaseA.release(); // idempotent
    expect(budget.stats()).toMatchObject({ reservedBytes: 0, leases: 0 });
  });

  it("sheds with 503 OVERLOADED and Retry-After when too much waits or a wait lasts too long", async () => {
    const { budget } = setUp();
    const held = budget.tryReserve(60 * MiB)!;
    const waiting = [budget.admit(40 * MiB), budget.admit(40 * MiB)];
    await expect(budget.admit(1 * MiB)).rejects.toMatchObject({ code: "OVERLOADED", status: 503 });
    for (const refused of waiting) {
      const error = await refused.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProxyError);
      expect(error).toMatchObject({ code: "OVERLOADED", retryAfterSeconds: 1 });
    }
    expect(budget.stats()).toMatchObject({ shed: 3, waiting: 0, reservedBytes: 60 * MiB });
    held.release();
  });

  it("refuses at once with 413 work that could never fit, even with nothing else running", async () => {
    const { budget } = setUp();
    await expect(budget.admit(61 * MiB)).rejects.toMatchObject({ code: "SOURCE_TOO_LARGE", status: 413 });
    expect(budget.stats().tooLarge).toBe(1);
    expect(budget.stats().leases).toBe(0);
  });

  it("admits work when nothing else is in flight even if the measured overhead has grown, so work never starves", () => {
    const { budget, setRss } = setUp();
    setRss(80 * MiB); // 60 MiB of garbage nobody accounted for
    budget.sample();
    expect(budget.stats().overheadBytes).toBe(80 * MiB);
    const lease = budget.tryReserve(30 * MiB);
    expect(lease).toBeDefined();
    expect(budget.tryReserve(1 * MiB)).toBeUndefined(); // but nothing beside it
    lease?.release();
  });

  it("measures RSS the accounting does not see, shrinks the cache room by it, and forgets it after 5 s", () => {
    const { budget, fill, cache, setRss, advance } = setUp();
    fill(5, 10 * MiB - 1024); // ~50 MiB
    setRss(20 * MiB + cache.stats().bytes + 30 * MiB); // 30 MiB more than baseline + cache: garbage, allocator slack
    budget.sample();
    expect(budget.stats().overheadBytes).toBeGreaterThanOrEqual(50 * MiB - 1024);
    expect(cache.stats().bytes).toBeLessThanOrEqual(budget.stats().cacheRoomBytes);
    expect(budget.stats().cacheRoomBytes).toBeLessThanOrEqual(40 * MiB);
    setRss(20 * MiB + cache.stats().bytes);
    advance(5_001);
    budget.sample();
    expect(budget.stats().overheadBytes).toBe(20 * MiB);
    expect(budget.stats().cacheRoomBytes).toBe(60 * MiB);
  });

  it("forces a collection when RSS nears the limit, at most once a second", () => {
    const { budget, setRss, advance, collections } = setUp();
    setRss(96 * MiB); // above limit - margin/2
    budget.sample();
    budget.sample();
    expect(collections()).toBe(1);
    advance(1000);
    budget.sample();
    expect(collections()).toBe(2);
    setRss(50 * MiB);
    advance(1000);
    budget.sample();
    expect(collections()).toBe(2);
  });

  it("lets a lease grow or shrink; a shrink lets waiting work start", async () => {
    const { budget } = setUp();
    const lease = budget.reserve(60 * MiB);
    const waiting = budget.admit(20 * MiB);
    lease.resize(40 * MiB);
    const second = await waiting;
    expect(budget.stats().reservedBytes).toBe(60 * MiB);
    second.release();
    lease.release();
  });

  it("judges 'never fits' against the planned baseline, so a process that started large still runs big work alone", async () => {
    const { budget } = setUp({ baselineBytes: 95 * MiB, plannedBaselineBytes: 20 * MiB });
    const lease = await budget.admit(55 * MiB); // 100 - 10 margin - 20 planned - 10 floor = 60 MiB could fit
    expect(lease.bytes).toBe(55 * MiB);
    lease.release();
    await expect(budget.admit(61 * MiB)).rejects.toMatchObject({ code: "SOURCE_TOO_LARGE" });
  });
});
