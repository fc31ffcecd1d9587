import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, open, readdir, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DiskCache } from "../../../src/cache/disk-cache.ts";
import type { Variant } from "../../../src/cache/tier.ts";
import { TierHealth } from "../../../src/cache/tier-health.ts";
import type { TierLogger } from "../../../src/cache/tier-health.ts";
import { testSource, withoutFreshness } from "../../helpers/entries.ts";

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "imagika-disk-"));
  dirs.push(dir);
  return dir;
}

function recordingLog(): TierLogger & { warnings: number; infos: number } {
  const log = {
    warnings: 0,
    infos: 0,
    warn: () => void log.warnings++,
    info: () => void log.infos++,
  };
  return log;
}

function variant(bytes: number, fill = 7): Variant {
  return {
    body: Buffer.alloc(bytes, fill),
    format: "webp",
    etag: `"e${fill}"`,
    width: 40,
    height: 30,
    originalBytes: 9,
    source: testSource(),
  };
}

async function openCache(
  dir: string,
  options: { maxBytes?: number; ttlSeconds?: number; retainStaleSeconds?: number; now?: () => number } = {},
): Promise<DiskCache> {
  return DiskCache.open({
    dir,
    maxBytes: options.maxBytes ?? 1024 * 1024,
    ttlSeconds: options.ttlSeconds ?? 0,
    retainStaleSeconds: options.retainStaleSeconds ?? 0,
    health: new TierHealth({ tier: "disk", log: recordingLog(), minBackoffMs: 0 }),
    ...(options.now ? { now: options.now } : {}),
  });
}

async function entryFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const shard of await readdir(dir)) {
    if (shard === "tmp") continue;
    for (const name of await readdir(join(dir, shard))) files.push(join(dir, shard, name));
  }
  return files;
}

/**
 * Replaces the entry file of `key` (the only one in `dir`) with a named pipe holding the same bytes, so a read of it
 * waits until the test lets it finish: `release()` writes the bytes and closes the pipe. The test can act (purge,
 * evict) while a DiskCache.get is provably between opening the file and having read it.
 */
async function heldEntry(dir: string): Promise<{ start(): Promise<void>; release(): Promise<void> }> {
  const [file] = await entryFiles(dir);
  if (file === undefined) throw new Error("no entry file");
  const bytes = await readFile(file);
  await unlink(file);
  execFileSync("mkfifo", [file]);
  let writer: Awaited<ReturnType<typeof open>> | undefined;
  return {
    // Opening the write end waits for the reader, so once this resolves the read has begun.
    start: async () => void (writer = await open(file, "w")),
    release: async () => {
      await writer?.write(bytes);
      await writer?.close();
    },
  };
}

describe("DiskCache", () => {
  it("returns what was stored, with every fact of the variant", async () => {
    const cache = await openCache(await tempDir());
    expect(await cache.set("v:a.jpg?w=40", variant(500))).toBe(true);
    const got = await cache.get("v:a.jpg?w=40");
    expect(got).toMatchObject({
      format: "webp",
      etag: '"e7"',
      width: 40,
      height: 30,
      originalBytes: 9,
      source: testSource(),
    });
    expect(got?.body.equals(Buffer.alloc(500, 7))).toBe(true);
    expect(await cache.get("v:other")).toBeUndefined();
    expect(cache.stats()).toMatchObject({ entries: 1, hits: 1, misses: 1 });
  });

  it("keeps entries across a restart: the index is rebuilt from the directory", async () => {
    const dir = await tempDir();
    const first = await openCache(dir);
    await first.set("o:a.jpg", variant(300, 1));
    await first.set("o:b.jpg", variant(400, 2));
    const second = await openCache(dir);
    expect(second.stats()).toMatchObject({ entries: 2, bytes: first.stats().bytes });
    expect((await second.get("o:b.jpg"))?.body.equals(Buffer.alloc(400, 2))).toBe(true);
  });

  it("evicts least recently used entries until the byte budget holds", async () => {
    const dir = await tempDir();
    const probe = await openCache(await tempDir());
    await probe.set("k0", variant(1000));
    const entryBytes = probe.stats().bytes;
    const cache = await openCache(dir, { maxBytes: entryBytes * 3 });
    await cache.set("k0", variant(1000));
    await cache.set("k1", variant(1000));
    await cache.set("k2", variant(1000));
    await cache.get("k0"); // k1 is now the coldest
    await cache.set("k3", variant(1000));
    expect(await cache.get("k1")).toBeUndefined();
    expect(await cache.get("k0")).toBeDefined();
    expect(cache.stats()).toMatchObject({ entries: 3, evictions: 1 });
    expect(cache.stats().bytes).toBeLessThanOrEqual(entryBytes * 3);
    expect(await entryFiles(dir)).toHaveLength(3);
  });

  it("drops a corrupted file instead of serving it, and deletes it", async () => {
    const dir = await tempDir();
    const cache = await openCache(dir);
    await cache.set("v:x", variant(2000));
    const [file] = await entryFiles(dir);
    const bytes = await readFile(file!);
    const at = bytes.length - 10;
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at); // flipped bits in the body: the CRC no longer matches
    await writeFile(file!, bytes);
    expect(await cache.get("v:x")).toBeUndefined();
    expect(cache.stats()).toMatchObject({ corrupt: 1, entries: 0 });
    expect(await entryFiles(dir)).toHaveLength(0);
  });

  it("drops a torn (truncated) file, also when it is found by the index scan at start", async () => {
    const dir = await tempDir();
    const cache = await openCache(dir);
    await cache.set("v:torn", variant(2000));
    const [file] = await entryFiles(dir);
    const bytes = await readFile(file!);
    await writeFile(file!, bytes.subarray(0, bytes.length - 100));
    expect(await cache.get("v:torn")).toBeUndefined();
    expect(cache.stats().corrupt).toBe(1);
    await writeFile(file!, bytes.subarray(0, 10)); // shorter than the header: the scan removes it
    const reopened = await openCache(dir);
    expect(reopened.stats()).toMatchObject({ entries: 0, corrupt: 1 });
  });

  it("keeps an entry past its freshness for the stale window, then treats it as a miss, across restarts", async () => {
    const dir = await tempDir();
    let now = 1_000_000;
    const cache = await openCache(dir, { retainStaleSeconds: 30, now: () => now });
    await cache.set("v:t", { ...variant(10), source: testSource({ freshUntilMs: now + 60_000 }) });
    now += 89_000; // stale for 29 s: still kept (it may be served stale or revalidated)
    const stale = await cache.get("v:t");
    expect(stale?.source.freshUntilMs).toBe(1_060_000);
    now += 2_000;
    const reopened = await openCache(dir, { retainStaleSeconds: 30, now: () => now });
    expect(await reopened.get("v:t")).toBeUndefined();
  });

  it("reads an entry written before issue 20 with the TTL from its storage time as its freshness", async () => {
    const dir = await tempDir();
    let now = 1_000_000;
    const cache = await openCache(dir, { ttlSeconds: 60, now: () => now });
    await cache.set("v:old", variant(10));
    const [file] = await entryFiles(dir);
    await writeFile(file!, withoutFreshness(await readFile(file!)));
    now += 59_000;
    const legacy = await cache.get("v:old");
    expect(legacy?.source).toMatchObject({ etag: "", freshUntilMs: 1_060_000 });
    now += 2_000;
    expect(await cache.get("v:old")).toBeUndefined();
  });

  it("reads entries another process wrote into the shared directory after it started", async () => {
    const dir = await tempDir();
    const a = await openCache(dir);
    const b = await openCache(dir);
    await a.set("v:shared", variant(100, 3));
    expect((await b.get("v:shared"))?.body.equals(Buffer.alloc(100, 3))).toBe(true);
    await a.delete("v:shared");
    expect(await b.get("v:shared")).toBeUndefined();
    expect(b.stats().entries).toBe(0);
  });

  it("does not index again an entry purged while it was being read: no phantom bytes, and it stays gone", async () => {
    const dir = await tempDir();
    const cache = await openCache(dir);
    await cache.set("v:held.jpg?w=1", variant(700));
    const held = await heldEntry(dir);
    const reading = cache.get("v:held.jpg?w=1");
    await held.start();
    expect(await cache.purge({ kind: "path", path: "held.jpg" })).toBe(1);
    await held.release();
    expect(await reading).toBeUndefined(); // the purge finished first: its entry is gone for everyone
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0 });
    expect(await entryFiles(dir)).toHaveLength(0);
    expect(await cache.get("v:held.jpg?w=1")).toBeUndefined();
  });

  it("does not index again an entry evicted while it was being read", async () => {
    const dir = await tempDir();
    const probe = await openCache(await tempDir());
    await probe.set("k0", variant(1000));
    const entryBytes = probe.stats().bytes;
    const cache = await openCache(dir, { maxBytes: entryBytes }); // room for one entry
    await cache.set("k0", variant(1000));
    const held = await heldEntry(dir);
    const reading = cache.get("k0");
    await held.start();
    await cache.set("k1", variant(1000, 2)); // evicts k0
    await held.release();
    expect(await reading).toBeUndefined();
    expect(cache.stats()).toMatchObject({ entries: 1, bytes: entryBytes, evictions: 1 });
    expect(await entryFiles(dir)).toHaveLength(1);
  });

  it("removes an entry whose write was still under way when a purge began", async () => {
    const dir = await tempDir();
    const cache = await openCache(dir);
    for (const purge of [
      () => cache.purge({ kind: "path", path: "late.jpg" }),
      () => cache.purge({ kind: "prefix", prefix: "la" }),
      () => cache.purge({ kind: "all" }),
      () => cache.delete("v:late.jpg?w=1"),
    ]) {
      const storing = cache.set("v:late.jpg?w=1", variant(300)); // writes, renames, then indexes
      await purge();
      expect(await storing).toBe(false);
      expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0 });
      expect(await entryFiles(dir)).toHaveLength(0);
      expect(await cache.get("v:late.jpg?w=1")).toBeUndefined();
    }
  });

  it("counts a failing disk as one episode and keeps answering misses", async () => {
    const dir = await tempDir();
    const log = recordingLog();
    const health = new TierHealth({ tier: "disk", log, minBackoffMs: 0 });
    const cache = await DiskCache.open({ dir, maxBytes: 1 << 20, ttlSeconds: 0, health });
    await rm(join(dir, "tmp"), { recursive: true });
    await writeFile(join(dir, "tmp"), "not a directory"); // every write now fails (ENOTDIR), like a full disk
    expect(await cache.set("v:1", variant(10))).toBe(false);
    expect(await cache.set("v:2", variant(10))).toBe(false);
    expect(cache.stats()).toMatchObject({ failures: 2, isHealthy: false, entries: 0 });
    expect(log.warnings).toBe(1);
    await rm(join(dir, "tmp"));
    await cache.set("v:3", variant(10)); // fails once more (no tmp dir), then the directory comes back
    await mkdir(join(dir, "tmp"));
    expect(await cache.set("v:4", variant(10))).toBe(true);
    expect(cache.stats().isHealthy).toBe(true);
    expect(log.warnings).toBe(1);
    expect(log.infos).toBe(1);
  });
});
