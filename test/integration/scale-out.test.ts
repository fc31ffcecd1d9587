import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.ts";
import { imageFacts, makeJpeg } from "../helpers/images.ts";
import { startProxy } from "../helpers/proxy.ts";
import type { ProxyOverrides } from "../helpers/proxy.ts";
import { connectRedis, freePort, startPrivateRedis, SHARED_REDIS_URL, uniquePrefix } from "../helpers/redis.ts";
import type { PrivateRedis, TestRedisClient } from "../helpers/redis.ts";
import { sharedRedisCluster, sharedSingleRedis, startRedisCluster } from "../helpers/redis-cluster.ts";
import type { SharedRedis, TestRedisCluster } from "../helpers/redis-cluster.ts";
import { bytesRoute, startTestOrigin } from "../helpers/test-origin.ts";
import type { Route, TestOrigin } from "../helpers/test-origin.ts";

/**
 * Three in-process proxies sharing one Redis are three independent instances: separate memory caches, coalescers,
 * transformers and token buckets; only Redis (and a disk directory where a test says so) is common. The scale-out
 * scenarios run twice: on the one Redis every machine runs, and on a 3-master Redis Cluster of the file's own.
 */
let redis: TestRedisClient;
let origin: TestOrigin;
let jpeg: Buffer;
const apps: App[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  redis = await connectRedis(); // fails the whole file loudly when Redis is absent
  jpeg = await makeJpeg(800, 600, 11);
  origin = await startTestOrigin();
});

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await origin.close();
  await redis.close();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A path only this test uses, served by the origin after `delayMs`. */
function servedImage(name: string, delayMs = 0): string {
  origin.set(`/${name}`, bytesRoute(jpeg, "image/jpeg", delayMs));
  return name;
}

async function get(app: App, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${app.url}/img/${path}`, { headers });
  const body = Buffer.from(await res.arrayBuffer());
  return { res, body, cache: res.headers.get("x-cache"), status: res.status };
}

type Stats = { tiers: Record<string, Record<string, number | boolean>> };

async function statsOf(app: App): Promise<Stats> {
  return (await (await fetch(`${app.url}/api/stats`)).json()) as Stats;
}

/** Polls `check` every 20 ms until it holds; fails after `attempts` (no wall-clock assertion, just a bound). */
async function eventually(check: () => Promise<boolean>, attempts = 250): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("condition not reached");
}

describe.each(["single", "cluster"] as const)("scale-out over Redis (%s)", (kind) => {
  let shared: SharedRedis;
  let redisCluster: TestRedisCluster | undefined;
  const prefixes: string[] = [];
  const mine: App[] = [];
  // An origin of the block's own: the blocks use the same paths and count the origin's requests for them.
  let origin: TestOrigin;
  const servedImage = (name: string, delayMs = 0): string => {
    origin.set(`/${name}`, bytesRoute(jpeg, "image/jpeg", delayMs));
    return name;
  };

  beforeAll(async () => {
    origin = await startTestOrigin();
    if (kind === "single") shared = await sharedSingleRedis(SHARED_REDIS_URL);
    else shared = await sharedRedisCluster((redisCluster = await startRedisCluster()));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(mine.map((app) => app.close()));
    await origin.close();
    for (const prefix of prefixes) await shared.deletePrefix(prefix);
    await shared.close();
    await redisCluster?.stop();
  });

  /** `count` instances on this block's Redis under a new key prefix. */
  async function cluster(count: number, overrides: Partial<ProxyOverrides> = {}): Promise<App[]> {
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    const started = await Promise.all(
      Array.from({ length: count }, (_, index) =>
        startProxy({ origin: origin.url, ...shared.settingsFor(index), redisKeyPrefix: prefix, ...overrides }),
      ),
    );
    mine.push(...started);
    return started;
  }

  it("serves a variant produced by instance A as a hit on B without touching the origin", async () => {
    const [a, b] = await cluster(2);
    const path = servedImage("shared.jpg");
    const first = await get(a!, `${path}?w=200&f=webp`);
    expect(first.status).toBe(200);
    expect(first.cache).toBe("MISS");
    const second = await get(b!, `${path}?w=200&f=webp`);
    expect(second.cache).toBe("HIT");
    expect(await imageFacts(second.body)).toMatchObject({ format: "webp", width: 200 });
    expect(second.res.headers.get("etag")).toBe(first.res.headers.get("etag"));
    expect(origin.count(`/${path}`)).toBe(1);
    expect((await statsOf(b!)).tiers.redis).toMatchObject({ hits: 1 });
    const third = await get(b!, `${path}?w=200&f=webp`); // promoted into B's memory
    expect(third.cache).toBe("HIT");
    expect((await statsOf(b!)).tiers.redis).toMatchObject({ hits: 1 });
  });

  it("answers 3 x 100 concurrent cold requests over three instances with one origin fetch and one transform", async () => {
    const three = await cluster(3);
    const path = servedImage("herd.jpg", 300);
    const responses = await Promise.all(
      Array.from({ length: 300 }, (_, i) => get(three[i % 3]!, `${path}?w=320&f=webp`)),
    );
    expect(responses.every((r) => r.status === 200)).toBe(true);
    const facts = await Promise.all(responses.slice(0, 6).map((r) => imageFacts(r.body)));
    expect(facts.every((f) => f.format === "webp" && f.width === 320)).toBe(true);
    expect(origin.count(`/${path}`)).toBe(1);
    const transforms = three.reduce((sum, app) => sum + app.transformer.stats().transforms, 0);
    expect(transforms).toBe(1);
    const collapsed = responses.filter((r) => r.res.headers.get("cache-status")?.includes("collapsed")).length;
    expect(collapsed).toBeGreaterThanOrEqual(297);
  });

  it("lets the other instances do the work themselves when the variant is too large to share", async () => {
    const three = await cluster(3, { redisMaxEntryBytes: 1024 });
    const path = servedImage("big.jpg", 200);
    const responses = await Promise.all(
      Array.from({ length: 30 }, (_, i) => get(three[i % 3]!, `${path}?w=400&f=jpeg`)),
    );
    expect(responses.every((r) => r.status === 200)).toBe(true);
    const transforms = three.reduce((sum, app) => sum + app.transformer.stats().transforms, 0);
    expect(transforms).toBe(3); // one per instance: nothing could be shared, nothing hung
    const tooLarge = (await Promise.all(three.map(statsOf))).reduce(
      (sum, s) => sum + Number(s.tiers.redis!.tooLarge),
      0,
    );
    expect(tooLarge).toBeGreaterThan(0);
  });

  it("makes one client's requests over three instances draw from one shared limit", async () => {
    const three = await cluster(3, { rateLimit: 0.01, rateBurst: 10 }); // one token per 100 s: no refill mid-test
    const path = servedImage("limited.jpg");
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${three[i % 3]!.url}/img/${path}`);
      await res.arrayBuffer();
      statuses.push(res.status);
      if (i === 0) expect(res.headers.get("ratelimit")).toBe('"default";r=9;t=100');
      if (res.status === 429) expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(20);
    expect(statuses.slice(0, 10).every((s) => s === 200)).toBe(true);
  });

  it("purges on every instance: a purge on A empties B (memory, disk and Redis)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "imagika-purge-"));
    dirs.push(dir);
    const [a, b] = await cluster(2, { adminToken: "secret", diskCacheDir: dir });
    const path = servedImage("purged.jpg");
    await get(b!, `${path}?w=100`);
    await get(b!, path);
    expect((await get(b!, `${path}?w=100`)).cache).toBe("HIT");
    const purge = await fetch(`${a!.url}/api/cache/${path}`, {
      method: "DELETE",
      headers: { authorization: "Bearer secret" },
    });
    expect(purge.status).toBe(200);
    await eventually(() => Promise.resolve(b!.variants.stats().entries === 0));
    expect(b!.originals.stats().entries).toBe(0);
    expect((await statsOf(b!)).tiers.disk!.entries).toBe(0);
    const before = origin.count(`/${path}`);
    const after = await get(b!, `${path}?w=100`);
    expect(after.cache).toBe("MISS");
    expect(origin.count(`/${path}`)).toBe(before + 1);
  });

  it("purges a path prefix on every instance: memory, disk and Redis, and nothing outside it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "imagika-prefix-"));
    dirs.push(dir);
    const [a, b] = await cluster(2, { adminToken: "secret", diskCacheDir: dir });
    const prefix = prefixes.at(-1)!; // cluster() just pushed it
    origin.set("/albums/one.jpg", bytesRoute(jpeg, "image/jpeg"));
    origin.set("/albums/two.jpg", bytesRoute(jpeg, "image/jpeg"));
    origin.set("/kept.jpg", bytesRoute(jpeg, "image/jpeg"));
    for (const path of ["albums/one.jpg?w=60", "albums/two.jpg?w=60", "kept.jpg?w=60"]) await get(b!, path);
    expect(b!.variants.stats().entries).toBe(3);
    const res = await fetch(`${a!.url}/api/cache?prefix=albums/`, {
      method: "DELETE",
      headers: { authorization: "Bearer secret" },
    });
    expect(await res.json()).toMatchObject({ prefix: "albums/" });
    await eventually(() => Promise.resolve(b!.variants.stats().entries === 1));
    expect(b!.variants.keys()[0]).toMatch(/^v:kept\.jpg\?/);
    expect(b!.originals.keys()).toEqual(["o:kept.jpg"]);
    expect((await statsOf(b!)).tiers.disk!.entries).toBe(2);
    const left = await shared.keys(`${prefix}c:*`);
    expect(left.map((key) => key.slice(prefix.length)).sort()).toEqual([
      "c:o:kept.jpg",
      expect.stringMatching(/^c:v:kept\.jpg\?/) as string,
    ]);
    expect((await get(b!, "albums/one.jpg?w=60")).cache).toBe("MISS");
  });

  it("stores nothing a flight begun before another instance's purge brings back, and frees its key cluster-wide", async () => {
    const dir = await mkdtemp(join(tmpdir(), "imagika-remote-fence-"));
    dirs.push(dir);
    const [a, b] = await cluster(2, { adminToken: "secret", diskCacheDir: dir });
    const prefix = prefixes.at(-1)!; // cluster() just pushed it
    const old = await makeJpeg(200, 100, 31);
    const fresh = await makeJpeg(300, 300, 32); // at w=80: 40 px high when old, 80 when fresh
    let held: Parameters<Route>[1] | undefined;
    origin.set("/fence/held.jpg", (req, res) => {
      if (held === undefined) held = res;
      else bytesRoute(fresh, "image/jpeg")(req, res);
    });
    servedImage("fence/warm.jpg");
    await get(b!, "fence/warm.jpg?w=50");

    const first = get(b!, "fence/held.jpg?w=80"); // B fetches, holding the cluster-wide lock
    first.catch(() => undefined);
    await eventually(() => Promise.resolve(origin.count("/fence/held.jpg") === 1));
    const purge = await fetch(`${a!.url}/api/cache?prefix=fence/`, {
      method: "DELETE",
      headers: { authorization: "Bearer secret" },
    });
    expect(purge.status).toBe(200);
    await eventually(() => Promise.resolve(b!.variants.stats().entries === 0)); // B applied it

    // Neither instance waits for B's old flight: it let go of the key when the purge reached it.
    for (const app of [a!, b!]) {
      const res = await fetch(`${app.url}/img/fence/held.jpg?w=80`, { signal: AbortSignal.timeout(3000) });
      expect(await imageFacts(Buffer.from(await res.arrayBuffer()))).toMatchObject({ width: 80, height: 80 });
    }
    expect(origin.count("/fence/held.jpg")).toBeGreaterThanOrEqual(2);

    held!.writeHead(200, { "content-type": "image/jpeg", "content-length": old.byteLength });
    held!.end(old);
    const answered = await first;
    expect(answered.status).toBe(200); // the request already waiting still gets its answer
    expect(await imageFacts(answered.body)).toMatchObject({ width: 80, height: 40 });
    await new Promise((resolve) => setTimeout(resolve, 100)); // let any (wrong) late store land

    for (const app of [a!, b!]) {
      const again = await get(app, "fence/held.jpg?w=80");
      expect(await imageFacts(again.body)).toMatchObject({ width: 80, height: 80 });
    }
    const stored = await shared.get(`${prefix}c:o:fence/held.jpg`);
    expect(stored).not.toBeNull();
    expect(b!.originals.get("o:fence/held.jpg")?.body.equals(old)).not.toBe(true);
  });

  it("applies a purge published right behind malformed messages in the same read", async () => {
    const [app] = await cluster(1);
    const prefix = prefixes.at(-1)!; // cluster() just pushed it
    const path = servedImage("bus-junk.jpg");
    expect((await get(app!, `${path}?w=90`)).status).toBe(200);
    expect(app!.variants.stats().entries).toBe(1);
    const purge = JSON.stringify({ from: "another-instance", message: { type: "purge", path } });
    // One MULTI: Redis sends the four messages back to back, so the subscriber decodes them from one read (on a
    // cluster, from whichever node its subscription is on).
    await shared.publishAtOnce(`${prefix}events`, ["null", "{}", "\u0000garbage{", purge]);
    await eventually(() =>
      Promise.resolve(app!.variants.stats().entries === 0 && app!.originals.stats().entries === 0),
    );
  });

  it.runIf(kind === "cluster")(
    "spreads entries over every master, and a purge of everything finds them on each",
    async () => {
      const [a, b] = await cluster(2, { adminToken: "secret" });
      const prefix = prefixes.at(-1)!; // cluster() just pushed it
      const path = servedImage("spread.jpg");
      for (let width = 40; width < 70; width++) expect((await get(b!, `${path}?w=${width}`)).status).toBe(200);
      // 31 keys (the original and 30 variants), no hash tags: all on two of three masters would be a 3 x (2/3)^31 chance.
      const perMaster = await Promise.all(
        redisCluster!.ports.map(
          async (port) =>
            (await redisCluster!.cli(port, "--scan", "--pattern", `${prefix}c:*`)).split("\n").filter(Boolean).length,
        ),
      );
      expect(perMaster.reduce((sum, count) => sum + count, 0)).toBe(31);
      expect(perMaster.every((count) => count > 0)).toBe(true);
      const purge = await fetch(`${a!.url}/api/cache`, {
        method: "DELETE",
        headers: { authorization: "Bearer secret" },
      });
      expect(purge.status).toBe(200);
      expect(await shared.keys(`${prefix}c:*`)).toEqual([]);
      await eventually(() => Promise.resolve(b!.variants.stats().entries === 0));
      expect((await get(b!, `${path}?w=40`)).cache).toBe("MISS");
    },
  );
});

describe("tiers when things break", () => {
  let privateRedis: PrivateRedis;

  beforeAll(async () => {
    privateRedis = await startPrivateRedis();
  });

  afterAll(async () => {
    await privateRedis.stop();
  });

  it("keeps serving while Redis is killed mid-run, and resumes the Redis tier when it returns", async () => {
    const prefix = uniquePrefix();
    const app = await startProxy({
      origin: origin.url,
      redisUrl: privateRedis.url,
      redisKeyPrefix: prefix,
      rateLimit: 1000,
      rateBurst: 1000,
    });
    apps.push(app);
    const path = servedImage("outage.jpg");
    expect((await get(app, `${path}?w=50`)).status).toBe(200);
    expect((await statsOf(app)).tiers.redis).toMatchObject({ writes: 2, isHealthy: true });

    await privateRedis.stop();
    for (let width = 60; width < 100; width++) {
      const res = await get(app, `${path}?w=${width}`);
      expect(res.status).toBe(200);
      expect((await imageFacts(res.body)).width).toBe(width);
    }
    const down = await statsOf(app);
    expect(down.tiers.redis!.isHealthy).toBe(false);
    expect(down.tiers.redis!.failures).toBeGreaterThan(0);
    expect(down.tiers.redis!.rateLimitFallbackDecisions).toBeGreaterThan(0);
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toMatch(/imagika_tier_failures_total\{tier="redis"\} [1-9]/);

    await privateRedis.start();
    let width = 100;
    await eventually(async () => {
      expect((await get(app, `${path}?w=${width++}`)).status).toBe(200);
      return (await statsOf(app)).tiers.redis!.isHealthy === true;
    }, 600);
    const client = await connectRedis(privateRedis.url); // restarted empty: any entry was written after the outage
    let stored = 0;
    for await (const keys of client.scanIterator({ MATCH: `${prefix}c:v:*`, COUNT: 100 })) stored += keys.length;
    expect(stored).toBeGreaterThan(0);
    await client.close();
  });

  it("starts with its Redis Cluster down, serves without it, and joins it when it comes up", async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const prefix = uniquePrefix();
    const app = await startProxy({
      origin: origin.url,
      redisCluster: ports.map((port) => `redis://127.0.0.1:${port}`),
      redisKeyPrefix: prefix,
    });
    apps.push(app);
    const path = servedImage("cluster-late.jpg");
    expect((await get(app, `${path}?w=50`)).status).toBe(200);
    const redisCluster = await startRedisCluster(ports);
    try {
      let width = 51;
      await eventually(async () => {
        expect((await get(app, `${path}?w=${width++}`)).status).toBe(200);
        const tier = (await statsOf(app)).tiers.redis!;
        return tier.isHealthy === true && Number(tier.writes) > 0;
      }, 600);
      const shared = await sharedRedisCluster(redisCluster);
      expect((await shared.keys(`${prefix}c:v:*`)).length).toBeGreaterThan(0);
      await shared.close();
    } finally {
      await app.close();
      await redisCluster.stop();
    }
  });

  it("rides out a cluster master's crash: its replica takes over, every entry it held is still served, and an instance started before the takeover joins", async () => {
    const redisCluster = await startRedisCluster([], { replicas: 1 });
    const prefix = uniquePrefix();
    const settings = { origin: origin.url, redisCluster: [...redisCluster.urls], redisKeyPrefix: prefix };
    const a = await startProxy(settings);
    let b: App | undefined;
    try {
      const path = servedImage("failover.jpg");
      const widths = Array.from({ length: 30 }, (_, i) => 40 + i);
      for (const width of widths) expect((await get(a, `${path}?w=${width}`)).status).toBe(200);
      const roles = await Promise.all(redisCluster.ports.map((port) => redisCluster.cli(port, "ROLE")));
      const masters = redisCluster.ports.filter((_, i) => roles[i]!.startsWith("master"));
      expect(masters).toHaveLength(3);
      const victim = masters[0]!;
      expect(Number(await redisCluster.cli(victim, "DBSIZE"))).toBeGreaterThan(0); // 31 keys over 3: it holds some
      // Replication is asynchronous: wait until the replica has everything the victim has written.
      await eventually(async () => {
        const info = await redisCluster.cli(victim, "INFO", "replication");
        const offset = /master_repl_offset:(\d+)/.exec(info)?.[1];
        return offset !== undefined && new RegExp(`slave0:.*offset=${offset},`).test(info);
      });
      // ...and holds the same keys (the harness once let a replica load another master's snapshot).
      const replica = Number(
        /slave0:ip=[^,]*,port=(\d+)/.exec(await redisCluster.cli(victim, "INFO", "replication"))?.[1],
      );
      const keysOf = async (port: number) => (await redisCluster.cli(port, "KEYS", "*")).split("\n").sort();
      expect(await keysOf(replica)).toEqual(await keysOf(victim));
      await redisCluster.kill(victim);
      // B starts now, while every node still names the dead victim as the master of its slots (its replica takes over
      // after cluster-node-timeout, 2 s): node-redis's discovery would wait for that master for ever.
      b = await startProxy(settings);
      const alive = redisCluster.ports.filter((port) => port !== victim);
      await eventually(async () => {
        const states = await Promise.all(alive.map((port) => redisCluster.cli(port, "CLUSTER", "INFO")));
        const newRoles = await Promise.all(alive.map((port) => redisCluster.cli(port, "ROLE")));
        return (
          states.every((state) => state.includes("cluster_state:ok")) &&
          newRoles.filter((role) => role.startsWith("master")).length === 3
        );
      }, 750);

      // A keeps serving throughout and its Redis tier recovers: new entries are written again.
      const writesBefore = Number((await statsOf(a)).tiers.redis!.writes);
      let width = 100;
      await eventually(async () => {
        expect((await get(a, `${path}?w=${width++}`)).status).toBe(200);
        const tier = (await statsOf(a)).tiers.redis!;
        return tier.isHealthy === true && Number(tier.writes) > writesBefore;
      }, 600);
      // B joins the cluster once the topology has settled (its first discovery is abandoned and started over)...
      let probe = 200;
      await eventually(async () => {
        expect((await get(b!, `${path}?w=${probe++}`)).status).toBe(200);
        const tier = (await statsOf(b!)).tiers.redis!;
        return tier.isHealthy === true && Number(tier.writes) > 0;
      }, 750);
      // ...and, its memory empty of them, finds every entry written before the crash, the promoted replica's included.
      const fetched = origin.count(`/${path}`);
      const answers = await Promise.all(widths.map((w) => get(b!, `${path}?w=${w}`)));
      expect(answers.map((answer) => answer.cache)).toEqual(widths.map(() => "HIT"));
      expect(origin.count(`/${path}`)).toBe(fetched);
    } finally {
      await Promise.all([a.close(), b?.close()]);
      await redisCluster.stop();
    }
  }, 60_000);

  it("detects a corrupted disk entry, never serves it, and fetches the original again", async () => {
    const dir = await mkdtemp(join(tmpdir(), "imagika-corrupt-"));
    dirs.push(dir);
    // No memory tier; a memory limit of its own, as the one derived from a 0-byte cache (285 MiB) would be charged for
    // this vitest worker's RSS too (about 270 MiB on Node 24: 413s; see proxy-core.test.ts).
    const app = await startProxy({ origin: origin.url, diskCacheDir: dir, cacheMaxBytes: 0, memoryLimit: 1024 ** 3 });
    apps.push(app);
    const path = servedImage("corrupt.jpg");
    expect((await get(app, `${path}?w=120&f=png`)).cache).toBe("MISS");
    expect((await get(app, `${path}?w=120&f=png`)).cache).toBe("HIT"); // from disk
    expect(origin.count(`/${path}`)).toBe(1);
    for (const shard of await readdir(dir)) {
      if (shard === "tmp") continue;
      for (const name of await readdir(join(dir, shard))) {
        const file = join(dir, shard, name);
        const bytes = await readFile(file);
        bytes.fill(0x41, bytes.length - 64); // the tail of the body overwritten: length holds, checksum does not
        await writeFile(file, bytes);
      }
    }
    const again = await get(app, `${path}?w=120&f=png`);
    expect(again.status).toBe(200);
    expect(again.cache).toBe("MISS");
    expect(await imageFacts(again.body)).toMatchObject({ format: "png", width: 120 });
    expect(origin.count(`/${path}`)).toBe(2);
    expect((await statsOf(app)).tiers.disk!.corrupt).toBeGreaterThanOrEqual(1);
  });
});
