import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.ts";
import { imageFacts, makeJpeg, sha256 } from "../helpers/images.ts";
import { startProxy } from "../helpers/proxy.ts";
import type { ProxyOverrides } from "../helpers/proxy.ts";
import { connectRedis, deletePrefix, SHARED_REDIS_URL, uniquePrefix } from "../helpers/redis.ts";
import type { TestRedisClient } from "../helpers/redis.ts";
import { startTestOrigin, versionedImage } from "../helpers/test-origin.ts";
import type { TestOrigin, VersionedImage } from "../helpers/test-origin.ts";

/**
 * Issue 20: validators, revalidation, stale-while-revalidate, stale-if-error, the origin's Cache-Control and variants
 * that follow their original. Every proxy runs on an injected clock (`now`); only real timers (a stalled origin's
 * timeout, a background revalidation's round trip) are waited for.
 */
let origin: TestOrigin;
let redis: TestRedisClient;
let v1: Buffer; // 400x200
let v2: Buffer; // 300x300: another aspect ratio, so a variant shows which version it was made from
const apps: App[] = [];
const dirs: string[] = [];
const prefixes: string[] = [];
let clock = 1_000_000;
const now = (): number => clock;
let pathCount = 0;

beforeAll(async () => {
  [v1, v2] = await Promise.all([makeJpeg(400, 200, 31), makeJpeg(300, 300, 32)]);
  origin = await startTestOrigin();
  redis = await connectRedis();
});

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await origin.close();
  for (const prefix of prefixes) await deletePrefix(redis, prefix);
  await redis.close();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function proxy(overrides: Partial<ProxyOverrides> = {}): Promise<App> {
  const app = await startProxy(
    { origin: origin.url, cacheTtlSeconds: 60, staleWhileRevalidateSeconds: 0, ...overrides },
    { now },
  );
  apps.push(app);
  return app;
}

/** A path only this test uses, served by a VersionedImage (v1 first). */
function image(options: { cacheControl?: string; delayMs?: number } = {}): { path: string; image: VersionedImage } {
  const path = `fresh-${++pathCount}.jpg`;
  const served = versionedImage(v1, options);
  origin.set(`/${path}`, served.route);
  return { path, image: served };
}

async function get(app: App, target: string) {
  const res = await fetch(`${app.url}/img/${target}`);
  const body = Buffer.from(await res.arrayBuffer());
  return {
    status: res.status,
    body,
    cacheStatus: res.headers.get("cache-status"),
    xCache: res.headers.get("x-cache"),
    etag: res.headers.get("etag"),
    cacheControl: res.headers.get("cache-control"),
  };
}

const heightAt80 = async (body: Buffer): Promise<number | undefined> => (await imageFacts(body)).height;
const WIDTHS = [40, 60, 80, 100, 120];

/** Polls until `check` holds (20 ms steps, bounded): for what another instance or a background task does. */
async function eventually(check: () => boolean | Promise<boolean>, attempts = 250): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("condition not reached");
}

describe("revalidation with the origin's validators", () => {
  it("answers a stale original and its variants after one 304: no download, no transform, same bytes and ETags", async () => {
    const app = await proxy();
    const { path, image: served } = image();
    const first = await Promise.all([get(app, path), ...WIDTHS.map((w) => get(app, `${path}?w=${w}`))]);
    const transforms = app.transformer.stats().transforms;
    clock += 61_000;

    const revalidated = await get(app, `${path}?w=80`);
    expect(revalidated.cacheStatus).toBe("imagika; fwd=stale; fwd-status=304; ttl=60");
    expect(revalidated.xCache).toBe("HIT");
    expect(revalidated.etag).toBe(first[3]!.etag);
    expect(sha256(revalidated.body)).toBe(sha256(first[3]!.body));
    // The 304 refreshed the original, so every variant made from it is fresh again without asking anyone.
    const rest = await Promise.all([get(app, path), ...WIDTHS.map((w) => get(app, `${path}?w=${w}`))]);
    expect(rest.map((r) => r.cacheStatus)).toEqual(Array(6).fill("imagika; hit"));
    expect(rest.map((r) => r.etag)).toEqual(first.map((r) => r.etag));
    expect([served.fullAnswers, served.notModifiedAnswers]).toEqual([1, 1]);
    expect(app.transformer.stats().transforms).toBe(transforms);
    expect(app.stats).toMatchObject({ revalidationsNotModified: 1, revalidationsModified: 0 });
  });

  it("asks with If-Modified-Since when the origin sends only Last-Modified", async () => {
    const app = await proxy();
    const { path, image: served } = image();
    served.validators = "last-modified";
    await get(app, `${path}?w=60`);
    clock += 61_000;
    expect((await get(app, `${path}?w=60`)).cacheStatus).toBe("imagika; fwd=stale; fwd-status=304; ttl=60");
    expect(served.conditionalRequests).toBe(1);
  });

  it("replaces a changed original and drops every variant of the old bytes", async () => {
    const app = await proxy();
    const { path, image: served } = image();
    await Promise.all([get(app, path), get(app, `${path}?w=80`), get(app, `${path}?w=40`)]);
    served.publish(v2);
    clock += 61_000;

    const changed = await get(app, `${path}?w=80`);
    expect(changed.cacheStatus).toBe("imagika; fwd=stale; fwd-status=200; ttl=60; stored");
    expect(changed.xCache).toBe("MISS");
    expect(await heightAt80(changed.body)).toBe(80);
    // The other variant of the old bytes is gone, not a hit: it is made again from the new bytes.
    const other = await get(app, `${path}?w=40`);
    expect(other.xCache).toBe("MISS");
    expect((await imageFacts(other.body)).height).toBe(40);
    const original = await get(app, path);
    expect(original.cacheStatus).toBe("imagika; hit");
    expect(sha256(original.body)).toBe(sha256(v2));
    expect(app.stats).toMatchObject({ revalidationsModified: 1, originalsChanged: 1 });
  });

  it("drops the variants of old bytes when an evicted original comes back changed, before they expire", async () => {
    const app = await proxy();
    const { path, image: served } = image();
    await get(app, `${path}?w=80`);
    app.originals.delete(`o:${path}`); // as if the LRU had evicted it; the variant stays, fresh
    served.publish(v2);
    const another = await get(app, `${path}?w=40`); // needs the original again: the origin has new bytes
    expect((await imageFacts(another.body)).height).toBe(40);
    const old = await get(app, `${path}?w=80`);
    expect(old.xCache).toBe("MISS");
    expect(await heightAt80(old.body)).toBe(80);
  });
  it("revalidates a stale variant whose original was evicted by downloading it: same bytes keep the variant", async () => {
    const app = await proxy();
    const { path, image: served } = image();
    const first = await get(app, `${path}?w=80`);
    app.originals.delete(`o:${path}`);
    clock += 61_000;
    const transforms = app.transformer.stats().transforms;
    const again = await get(app, `${path}?w=80`);
    expect(again.cacheStatus).toBe("imagika; fwd=stale; fwd-status=200; ttl=60");
    expect(again.etag).toBe(first.etag);
    expect(app.transformer.stats().transforms).toBe(transforms);
    expect(served.fullAnswers).toBe(2);
  });
});

describe("stale-while-revalidate", () => {
  it("answers 20 concurrent requests for a stale variant at once, with one background revalidation", async () => {
    const app = await proxy({ staleWhileRevalidateSeconds: 30 });
    // The origin answers the revalidation 1 s late, so all 20 arrive while it runs even on a loaded machine (with
    // 50 ms, some arrived after it in a full run and were fresh hits).
    const { path, image: served } = image({ delayMs: 1000 });
    await get(app, `${path}?w=80`);
    clock += 65_000;
    const answers = await Promise.all(Array.from({ length: 20 }, () => get(app, `${path}?w=80`)));
    expect(answers.every((a) => a.status === 200 && a.cacheStatus === "imagika; hit; ttl=-5")).toBe(true);
    await eventually(() => served.notModifiedAnswers === 1);
    expect(served.conditionalRequests).toBe(1);
    await eventually(async () => (await get(app, `${path}?w=80`)).cacheStatus === "imagika; hit");
    expect(app.stats.staleWhileRevalidate).toBe(20);
  });

  it("revalidates in the foreground past the window", async () => {
    const app = await proxy({ staleWhileRevalidateSeconds: 30 });
    const { path } = image();
    await get(app, `${path}?w=80`);
    clock += 91_000;
    expect((await get(app, `${path}?w=80`)).cacheStatus).toBe("imagika; fwd=stale; fwd-status=304; ttl=60");
  });
});

describe("stale-if-error", () => {
  it.each([
    ["a 500", 500, 500],
    ["a 503", 503, 503],
    ["a reset connection", "reset" as const, 502],
  ])("answers a stale entry with 200 when the origin fails with %s", async (_name, fault, fwdStatus) => {
    const app = await proxy();
    const { path, image: served } = image();
    const fresh = await get(app, `${path}?w=80`);
    clock += 61_000;
    served.failWith = fault;
    const answer = await get(app, `${path}?w=80`);
    expect(answer.status).toBe(200);
    expect(answer.cacheStatus).toBe(`imagika; fwd=stale; fwd-status=${fwdStatus}; ttl=-1`);
    expect(answer.etag).toBe(fresh.etag);
    // Within a second of a failed revalidation the next requests do not wait for the origin again.
    const asked = served.conditionalRequests;
    expect((await get(app, path)).status).toBe(200);
    expect((await get(app, `${path}?w=80`)).status).toBe(200);
    expect(served.conditionalRequests).toBe(asked);
    expect(app.stats.staleIfError).toBe(3);
    // Back: a second later a request still answers stale at once, and its background revalidation refreshes it.
    served.failWith = undefined;
    clock += 1_000;
    expect((await get(app, `${path}?w=80`)).cacheStatus).toBe(`imagika; fwd=stale; fwd-status=${fwdStatus}; ttl=-2`);
    await eventually(() => served.notModifiedAnswers === 1);
    expect((await get(app, `${path}?w=80`)).cacheStatus).toBe("imagika; hit");
  });

  it("answers 504 from a stale entry's timeout only past the window", async () => {
    const app = await proxy({ originHeadersTimeoutMs: 150, staleIfErrorSeconds: 100 });
    const { path, image: served } = image();
    await get(app, `${path}?w=80`);
    served.failWith = "stall";
    clock += 61_000;
    expect((await get(app, `${path}?w=80`)).cacheStatus).toBe("imagika; fwd=stale; fwd-status=504; ttl=-1");
    clock += 100_000; // 161 s after it was stored: 101 s stale
    const tooOld = await get(app, `${path}?w=80`);
    expect(tooOld.status).toBe(504);
    expect(JSON.parse(tooOld.body.toString())).toMatchObject({ error: "ORIGIN_TIMEOUT" });
  });

  it("answers stale entries when the origin refuses connections", async () => {
    const down = await startTestOrigin();
    const served = versionedImage(v1);
    down.set("/gone.jpg", served.route);
    const app = await startProxy({ origin: down.url, cacheTtlSeconds: 60, staleWhileRevalidateSeconds: 0 }, { now });
    apps.push(app);
    await Promise.all([get(app, "gone.jpg"), get(app, "gone.jpg?w=80")]);
    await down.close();
    clock += 61_000;
    const answers = await Promise.all([get(app, "gone.jpg"), get(app, "gone.jpg?w=80")]);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(answers.map((a) => a.cacheStatus)).toEqual(Array(2).fill("imagika; fwd=stale; fwd-status=502; ttl=-1"));
  });

  it("never serves stale what the origin marked must-revalidate", async () => {
    const app = await proxy();
    const { path, image: served } = image({ cacheControl: "max-age=10, must-revalidate" });
    await get(app, `${path}?w=80`);
    clock += 11_000;
    served.failWith = 500;
    const answer = await get(app, `${path}?w=80`);
    expect(answer.status).toBe(502);
  });
});

describe("the origin's Cache-Control", () => {
  it("takes s-maxage before max-age before Expires, and the TTL without any", async () => {
    const app = await proxy({ cacheTtlSeconds: 3600 });
    const sMaxAge = image({ cacheControl: "max-age=5, s-maxage=20" });
    const maxAge = image({ cacheControl: "public, max-age=10" });
    const expires = image();
    expires.image.expires = new Date(Date.now() + 30_000).toUTCString();
    const none = image();
    for (const { path } of [sMaxAge, maxAge, expires, none]) await get(app, path);
    clock += 11_000;
    expect((await get(app, sMaxAge.path)).cacheStatus).toBe("imagika; hit");
    expect((await get(app, maxAge.path)).cacheStatus).toBe("imagika; fwd=stale; fwd-status=304; ttl=10");
    clock += 10_000;
    expect((await get(app, sMaxAge.path)).cacheStatus).toBe("imagika; fwd=stale; fwd-status=304; ttl=20");
    expect((await get(app, expires.path)).cacheStatus).toBe("imagika; hit");
    clock += 10_000; // 31 s: Expires (relative to the origin's Date) has passed, the TTL has not
    expect((await get(app, expires.path)).cacheStatus).toMatch(/^imagika; fwd=stale; fwd-status=304/);
    expect((await get(app, none.path)).cacheStatus).toBe("imagika; hit");
  });

  it("keeps no-store and private originals in no tier, and still coalesces concurrent requests", async () => {
    const dir = await mkdtemp(join(tmpdir(), "imagika-nostore-"));
    dirs.push(dir);
    const app = await proxy({ diskCacheDir: dir });
    for (const cacheControl of ["no-store", "private, max-age=600"]) {
      const { path, image: served } = image({ cacheControl, delayMs: 100 });
      const together = await Promise.all(Array.from({ length: 5 }, () => get(app, `${path}?w=80`)));
      expect(together.every((a) => a.status === 200)).toBe(true);
      expect(served.fullAnswers).toBe(1);
      expect(together.map((a) => a.cacheStatus).filter((s) => s?.includes("collapsed"))).toHaveLength(4);
      const again = await get(app, `${path}?w=80`);
      expect(again.cacheStatus).toBe("imagika; fwd=miss");
      // and no cache after the proxy may keep it either (a CDN in front would have kept it for a year)
      expect(together.map((a) => a.cacheControl)).toEqual(Array(5).fill("private, no-store"));
      expect(again.cacheControl).toBe("private, no-store");
      expect(served.fullAnswers).toBe(2);
      expect((await get(app, path)).cacheStatus).toBe("imagika; fwd=miss");
    }
    expect(app.originals.keys()).toEqual([]);
    expect(app.variants.keys()).toEqual([]);
    expect(await readdir(dir)).toEqual(["tmp"]);
  });

  it("ignores it all with --origin-cache-control ignore", async () => {
    const app = await proxy({ originCacheControl: "ignore" });
    const { path, image: served } = image({ cacheControl: "no-store, max-age=1" });
    await get(app, `${path}?w=80`);
    clock += 30_000;
    const hit = await get(app, `${path}?w=80`);
    expect(hit.cacheStatus).toBe("imagika; hit");
    expect(hit.cacheControl).toMatch(/^public, max-age=\d+$/);
    expect(served.fullAnswers).toBe(1);
  });
});

describe("variants follow their original through the disk tier", () => {
  it("drops the old variants from disk too, so a restarted proxy serves none of them", async () => {
    const dir = await mkdtemp(join(tmpdir(), "imagika-fresh-disk-"));
    dirs.push(dir);
    const app = await proxy({ diskCacheDir: dir });
    const { path, image: served } = image();
    await Promise.all([get(app, `${path}?w=80`), get(app, `${path}?w=40`)]);
    served.publish(v2);
    clock += 61_000;
    expect((await get(app, `${path}?w=80`)).cacheStatus).toMatch(/fwd-status=200/);

    const restarted = await proxy({ diskCacheDir: dir });
    const other = await get(restarted, `${path}?w=40`);
    expect(other.xCache).toBe("MISS");
    expect((await imageFacts(other.body)).height).toBe(40);
    const kept = await get(restarted, `${path}?w=80`);
    expect(kept.xCache).toBe("HIT"); // made from the new bytes, on disk
    expect(await heightAt80(kept.body)).toBe(80);
  });

  it("revalidates a stale variant read from disk through its original (a 304), after a restart", async () => {
    const dir = await mkdtemp(join(tmpdir(), "imagika-fresh-disk-"));
    dirs.push(dir);
    const app = await proxy({ diskCacheDir: dir });
    const { path, image: served } = image();
    await get(app, `${path}?w=80`);
    clock += 61_000;
    const restarted = await proxy({ diskCacheDir: dir });
    const transforms = restarted.transformer.stats().transforms;
    expect((await get(restarted, `${path}?w=80`)).cacheStatus).toBe("imagika; fwd=stale; fwd-status=304; ttl=60");
    expect(served.fullAnswers).toBe(1);
    expect(restarted.transformer.stats().transforms).toBe(transforms);
  });
});

describe("variants follow their original across instances (Redis)", () => {
  async function pair(): Promise<[App, App]> {
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    const shared = { redisUrl: SHARED_REDIS_URL, redisKeyPrefix: prefix };
    return [await proxy(shared), await proxy(shared)];
  }

  it("serves no variant of a changed original on either instance once one of them has seen the change", async () => {
    const [a, b] = await pair();
    const { path, image: served } = image();
    await get(a, `${path}?w=80`);
    await get(a, `${path}?w=40`);
    expect((await get(b, `${path}?w=40`)).xCache).toBe("HIT"); // from Redis, now in B's memory too
    served.publish(v2);
    clock += 61_000;
    expect((await get(a, `${path}?w=80`)).cacheStatus).toMatch(/fwd-status=200/);
    // B hears of it over pub/sub; its copy (memory and Redis) of the old variant is gone.
    await eventually(() => b.variants.keys().length === 0);
    const fromB = await get(b, `${path}?w=40`);
    expect((await imageFacts(fromB.body)).height).toBe(40);
    expect(served.fullAnswers).toBe(2);
  });

  it("revalidates once for both instances", async () => {
    const [a, b] = await pair();
    const { path, image: served } = image({ delayMs: 100 });
    await get(a, `${path}?w=80`);
    await get(b, `${path}?w=80`);
    clock += 61_000;
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => get(i % 2 === 0 ? a : b, `${path}?w=80`)));
    expect(answers.every((r) => r.status === 200)).toBe(true);
    expect(served.conditionalRequests).toBe(1);
    expect((await get(b, `${path}?w=80`)).cacheStatus).toBe("imagika; hit");
  });
});

describe("/api/stats and /metrics", () => {
  it("count revalidations (304 / 200), changed originals, stale answers and purged entries", async () => {
    const app = await proxy({ staleWhileRevalidateSeconds: 10, adminToken: "t" });
    const same = image();
    const changing = image();
    await Promise.all([get(app, `${same.path}?w=80`), get(app, `${changing.path}?w=80`)]);
    changing.image.publish(v2);
    clock += 61_000;
    expect((await get(app, `${same.path}?w=80`)).cacheStatus).toBe("imagika; hit; ttl=-1"); // while revalidating
    await eventually(() => same.image.notModifiedAnswers === 1);
    clock += 20_000;
    expect((await get(app, `${changing.path}?w=80`)).cacheStatus).toMatch(/fwd-status=200/);
    clock += 61_000;
    same.image.failWith = 500;
    expect((await get(app, `${same.path}?w=80`)).status).toBe(200); // stale: while revalidating, in the window
    await eventually(() => app.stats.revalidationsFailed === 1);
    clock += 11_000;
    // Past the window: answered stale at once after the failure, and one more background probe (failing too).
    expect((await get(app, `${same.path}?w=80`)).cacheStatus).toMatch(/fwd-status=500/);
    await eventually(() => app.stats.revalidationsFailed === 2);
    const purge = await fetch(`${app.url}/api/cache?prefix=${changing.path}`, {
      method: "DELETE",
      headers: { authorization: "Bearer t" },
    });
    expect(await purge.json()).toMatchObject({ purged: 2 });

    const stats = (await (await fetch(`${app.url}/api/stats`)).json()) as Record<string, unknown>;
    expect(stats).toMatchObject({
      freshness: {
        revalidations: { notModified: 1, modified: 1, failed: 2 },
        originalsChanged: 1,
        staleServed: { whileRevalidating: 2, ifError: 1 },
      },
      purgedEntries: 2,
    });
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    for (const line of [
      'imagika_revalidations_total{result="304"} 1',
      'imagika_revalidations_total{result="200"} 1',
      'imagika_revalidations_total{result="error"} 2',
      "imagika_originals_changed_total 1",
      'imagika_stale_served_total{reason="while-revalidating"} 2',
      'imagika_stale_served_total{reason="if-error"} 1',
      "imagika_purged_entries_total 2",
    ])
      expect(metrics).toContain(line);
  });
});
