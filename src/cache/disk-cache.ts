import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { keyMatcherOf } from "./cache-key.ts";
import type { PurgeScope } from "./cache-key.ts";
import { decodeEntry, encodeEntry, entryHeadLength, ENTRY_HEADER_BYTES, readEntryKey } from "./entry-codec.ts";
import type { Variant } from "./tier.ts";
import type { TierHealth } from "./tier-health.ts";

/** Temp files older than this at start belong to a crashed writer (a live one renames within milliseconds). */
const STALE_TEMP_MS = 60_000;
/** Files opened at once while rebuilding the index: enough to hide latency, few enough for a small ulimit. */
const SCAN_CONCURRENCY = 32;

export interface DiskCacheOptions {
  readonly dir: string;
  readonly maxBytes: number;
  /** Freshness of entries written before issue 20 (which carry none of their own); 0 = until evicted. */
  readonly ttlSeconds: number;
  /** How long past its freshness a file is kept (to be served stale or revalidated); then it is deleted. */
  readonly retainStaleSeconds?: number;
  readonly health: TierHealth;
  /** Wall clock in epoch ms (TTLs must survive restarts); tests inject it. */
  readonly now?: () => number;
}

export interface DiskCacheStats {
  readonly entries: number;
  readonly bytes: number;
  readonly maxBytes: number;
  readonly evictions: number;
  readonly hits: number;
  readonly misses: number;
  /** Files dropped because their length, checksum or key did not match. */
  readonly corrupt: number;
  readonly failures: number;
  readonly isHealthy: boolean;
}

interface IndexEntry {
  readonly key: string;
  bytes: number;
}

/**
 * The reads and writes of one file under way: a removal (purge, delete, eviction) marks them, since the file may not
 * be in the index yet (a write between rename and indexing, a read of another worker's file) or any more (a read
 * that began before the removal). A marked read is a miss and a marked write takes its file back out.
 */
interface Pending {
  readonly key: string;
  isRemoved: boolean;
  users: number;
}

/**
 * Persistent tier: one file per entry under `<dir>/<2 hex>/<sha-256 of the key>`, each written to `<dir>/tmp` and
 * renamed into place (rename is atomic within a filesystem, so a reader sees the old file, the new one or none,
 * never half of one). Every file carries length and CRC-32 (entry-codec.ts); a file that fails the check is deleted
 * and reported as a miss. The index (file → key, bytes) lives in memory, in LRU order (Map insertion order), and is
 * rebuilt at start by scanning the directory, oldest mtime first.
 *
 * Several processes may share one directory (--workers): each keeps its own index, reads files it has not indexed
 * (another worker wrote them) and ignores files that vanished (another worker evicted them). The byte budget is
 * enforced per index, so with N workers the directory may briefly exceed it by what the others wrote since.
 */
export class DiskCache {
  readonly name = "disk";
  readonly isShared = false;
  readonly #dir: string;
  readonly #tmpDir: string;
  readonly #maxBytes: number;
  readonly #ttlMs: number;
  readonly #retainStaleMs: number;
  readonly #health: TierHealth;
  readonly #now: () => number;
  /** file name (hex hash) → entry; first = least recently used. */
  readonly #index = new Map<string, IndexEntry>();
  /** file name → operations under way on it. */
  readonly #pending = new Map<string, Pending>();
  #bytes = 0;
  #evictions = 0;
  #hits = 0;
  #misses = 0;
  #corrupt = 0;

  private constructor(options: DiskCacheOptions) {
    this.#dir = options.dir;
    this.#tmpDir = join(options.dir, "tmp");
    this.#maxBytes = options.maxBytes;
    this.#ttlMs = options.ttlSeconds * 1000;
    this.#retainStaleMs = (options.retainStaleSeconds ?? 0) * 1000;
    this.#health = options.health;
    this.#now = options.now ?? Date.now;
  }

  /** Creates the directory when needed and rebuilds the index from the files already there. */
  static async open(options: DiskCacheOptions): Promise<DiskCache> {
    const cache = new DiskCache(options);
    await mkdir(cache.#tmpDir, { recursive: true });
    await cache.#scan();
    return cache;
  }

  async get(key: string): Promise<Variant | undefined> {
    if (!this.#health.isAvailable()) return undefined;
    const name = fileNameOf(key);
    const pending = this.#begin(name, key);
    try {
      return await this.#read(name, key, pending);
    } finally {
      this.#end(name, pending);
    }
  }

  async #read(name: string, key: string, pending: Pending): Promise<Variant | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.#pathOf(name));
      this.#health.succeed();
    } catch (error) {
      if (!pending.isRemoved) this.#forget(name);
      if (!isMissing(error)) this.#health.fail(error);
      this.#misses++;
      return undefined;
    }
    if (pending.isRemoved) {
      // Purged or evicted while being read: indexing it again would count bytes no file holds (the removal
      // unlinked it), and a purged entry would come back.
      this.#misses++;
      return undefined;
    }
    const entry = decodeEntry(bytes, key, this.#ttlMs);
    if (!entry) {
      this.#corrupt++;
      this.#misses++;
      await this.#remove(name);
      return undefined;
    }
    if (this.#now() > entry.variant.source.freshUntilMs + this.#retainStaleMs) {
      this.#misses++;
      await this.#remove(name);
      return undefined;
    }
    const indexed = this.#index.get(name);
    if (indexed) {
      this.#index.delete(name); // move to the most recently used end
      this.#index.set(name, indexed);
    } else {
      this.#add(name, key, bytes.length); // written by another worker sharing the directory
    }
    this.#hits++;
    return entry.variant;
  }

  /** Writes atomically; false when the entry is larger than the whole budget, the disk failed or a purge won. */
  async set(key: string, variant: Variant): Promise<boolean> {
    if (!this.#health.isAvailable()) return false;
    const bytes = encodeEntry(key, variant, this.#now());
    if (bytes.length > this.#maxBytes) return false;
    const name = fileNameOf(key);
    const pending = this.#begin(name, key);
    try {
      return await this.#write(name, key, bytes, pending);
    } finally {
      this.#end(name, pending);
    }
  }

  async #write(name: string, key: string, bytes: Buffer, pending: Pending): Promise<boolean> {
    const temp = join(this.#tmpDir, `${name}.${process.pid}.${randomBytes(4).toString("hex")}`);
    try {
      await mkdir(join(this.#dir, name.slice(0, 2)), { recursive: true });
      await writeFile(temp, bytes);
      if (pending.isRemoved) {
        await unlink(temp).catch(() => undefined);
        return false;
      }
      await rename(temp, this.#pathOf(name));
      this.#health.succeed();
    } catch (error) {
      this.#health.fail(error); // ENOSPC, EACCES, EIO: the entry simply is not kept
      await unlink(temp).catch(() => undefined);
      return false;
    }
    if (pending.isRemoved) {
      // The removal ran while the file was being renamed into place, maybe before it: unlink what the rename left.
      await unlink(this.#pathOf(name)).catch(() => undefined);
      return false;
    }
    this.#add(name, key, bytes.length);
    await this.#evictToBudget();
    return true;
  }

  async delete(key: string): Promise<void> {
    await this.#remove(fileNameOf(key));
  }

  /** Deletes every entry whose key matches, and cancels matching writes under way; returns how many entries. */
  async deleteWhere(matches: (key: string) => boolean): Promise<number> {
    const doomed = [...this.#index].filter(([, entry]) => matches(entry.key)).map(([name]) => name);
    const unfinished = [...this.#pending].filter(([, pending]) => matches(pending.key)).map(([name]) => name);
    await this.#removeAll([...doomed, ...unfinished]);
    return doomed.length;
  }

  /** Deletes what `scope` names; returns how many entries. */
  purge(scope: PurgeScope): Promise<number> {
    return scope.kind === "all" ? this.clear() : this.deleteWhere(keyMatcherOf(scope));
  }

  async clear(): Promise<number> {
    const names = [...this.#index.keys()];
    await this.#removeAll([...names, ...this.#pending.keys()]);
    return names.length;
  }

  stats(): DiskCacheStats {
    return {
      entries: this.#index.size,
      bytes: this.#bytes,
      maxBytes: this.#maxBytes,
      evictions: this.#evictions,
      hits: this.#hits,
      misses: this.#misses,
      corrupt: this.#corrupt,
      failures: this.#health.failures,
      isHealthy: this.#health.isHealthy,
    };
  }

  #pathOf(name: string): string {
    return join(this.#dir, name.slice(0, 2), name);
  }

  #add(name: string, key: string, bytes: number): void {
    this.#forget(name);
    this.#index.set(name, { key, bytes });
    this.#bytes += bytes;
  }

  #forget(name: string): void {
    const entry = this.#index.get(name);
    if (!entry) return;
    this.#index.delete(name);
    this.#bytes -= entry.bytes;
  }

  async #remove(name: string): Promise<void> {
    this.#drop(name);
    await unlink(this.#pathOf(name)).catch(() => undefined); // already gone: another worker removed it
  }

  /** Takes every name out of the index and marks its operations at once, then unlinks the files. */
  async #removeAll(names: readonly string[]): Promise<void> {
    for (const name of names) this.#drop(name);
    for (const name of names) await unlink(this.#pathOf(name)).catch(() => undefined);
  }

  /** Out of the index, and the reads and writes under way lose: later ones start afresh. */
  #drop(name: string): void {
    this.#forget(name);
    const pending = this.#pending.get(name);
    if (!pending) return;
    pending.isRemoved = true;
    this.#pending.delete(name);
  }

  #begin(name: string, key: string): Pending {
    let pending = this.#pending.get(name);
    if (!pending) this.#pending.set(name, (pending = { key, isRemoved: false, users: 0 }));
    pending.users++;
    return pending;
  }

  #end(name: string, pending: Pending): void {
    pending.users--;
    if (pending.users === 0 && this.#pending.get(name) === pending) this.#pending.delete(name);
  }

  async #evictToBudget(): Promise<void> {
    while (this.#bytes > this.#maxBytes) {
      const coldest = this.#index.keys().next();
      if (coldest.done) return;
      this.#evictions++;
      await this.#remove(coldest.value);
    }
  }

  /** Rebuilds the index: reads each file's header for its key, orders by mtime, removes stale temp files. */
  async #scan(): Promise<void> {
    const found: { name: string; key: string; bytes: number; mtimeMs: number }[] = [];
    const shards = (await readdir(this.#dir, { withFileTypes: true })).filter(
      (entry) => entry.isDirectory() && /^[0-9a-f]{2}$/.test(entry.name),
    );
    const files: string[] = [];
    for (const shard of shards) {
      for (const name of await readdir(join(this.#dir, shard.name))) if (/^[0-9a-f]{64}$/.test(name)) files.push(name);
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < files.length) {
        const name = files[next++]!; // next < files.length was checked just above, with no await in between
        const head = await readHead(this.#pathOf(name));
        if (!head) {
          await unlink(this.#pathOf(name)).catch(() => undefined); // not an entry: a torn or foreign file
          this.#corrupt++;
          continue;
        }
        found.push({ name, ...head });
      }
    };
    await Promise.all(Array.from({ length: SCAN_CONCURRENCY }, worker));
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const entry of found) this.#add(entry.name, entry.key, entry.bytes);
    await this.#evictToBudget();
    const wallNow = Date.now();
    for (const temp of await readdir(this.#tmpDir)) {
      const path = join(this.#tmpDir, temp);
      const info = await stat(path).catch(() => undefined);
      if (info && wallNow - info.mtimeMs > STALE_TEMP_MS) await unlink(path).catch(() => undefined);
    }
  }
}

/** sha-256 hex of the key: fixed length, safe on every filesystem, whatever the key (remote URLs) contains. */
function fileNameOf(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

async function readHead(path: string): Promise<{ key: string; bytes: number; mtimeMs: number } | undefined> {
  let handle;
  try {
    handle = await open(path, "r");
    const info = await handle.stat();
    const fixed = Buffer.alloc(ENTRY_HEADER_BYTES);
    await handle.read(fixed, 0, ENTRY_HEADER_BYTES, 0);
    const headLength = entryHeadLength(fixed);
    if (headLength === undefined || headLength > info.size) return undefined;
    const head = Buffer.alloc(headLength);
    await handle.read(head, 0, headLength, 0);
    const parsed = readEntryKey(head);
    return parsed ? { key: parsed.key, bytes: info.size, mtimeMs: info.mtimeMs } : undefined;
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}
