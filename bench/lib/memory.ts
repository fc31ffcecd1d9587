import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, request } from "undici";

/**
 * The memory scenario (issue 18): loads that made the process's RSS run far past its cache budget, and a sampler of
 * the server's RSS while they run. What counts is the process (VmRSS, VmHWM), not the cache: the kernel kills the
 * process.
 */

/** An origin with any number of distinct originals: `/p/<n>.jpg` is the bytes of JPEG number n mod the library. */
export async function startManyOriginalsOrigin(
  jpegs: readonly Buffer[],
): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const server = createServer((req, res) => {
    const match = /^\/p\/(\d+)\.jpg$/.exec(req.url ?? "");
    if (!match) {
      res.writeHead(404).end();
      return;
    }
    requests++;
    const body = jpegs[Number(match[1]) % jpegs.length]!; // modulo keeps it in range
    res.writeHead(200, { "content-type": "image/jpeg", "content-length": body.byteLength });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** RSS of a process sampled every `intervalMs`; `peak` also reads VmHWM (the kernel's own high-water mark). */
export class RssSampler {
  readonly #pid: number;
  readonly #timer: NodeJS.Timeout;
  #peakBytes = 0;
  readonly samples: { atMs: number; rssBytes: number }[] = [];
  readonly #startedAt = performance.now();

  constructor(pid: number, intervalMs = 100) {
    this.#pid = pid;
    this.#timer = setInterval(() => this.sample(), intervalMs);
    this.sample();
  }

  sample(): number {
    try {
      const rss = readStatusBytes(this.#pid, "VmRSS");
      this.#peakBytes = Math.max(this.#peakBytes, rss);
      this.samples.push({ atMs: performance.now() - this.#startedAt, rssBytes: rss });
      return rss;
    } catch {
      return 0; // the process exited
    }
  }

  /** Highest RSS seen by the sampler or recorded by the kernel (VmHWM) since the process started. */
  peakBytes(): number {
    try {
      return Math.max(this.#peakBytes, readStatusBytes(this.#pid, "VmHWM"));
    } catch {
      return this.#peakBytes;
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

export function readStatusBytes(pid: number, key: "VmRSS" | "VmHWM"): number {
  const match = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match?.[1] === undefined) throw new Error(`no ${key} for ${pid}`);
  return Number(match[1]) * 1024;
}

export interface LoadResult {
  readonly requests: number;
  readonly durationMs: number;
  readonly byStatus: Readonly<Record<string, number>>;
  /** 503 answers that carried Retry-After (the only refusal the memory limit may cause). */
  readonly shedWithRetryAfter: number;
}

/** xorshift32: the same seed gives the same request sequence. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}

const FORMATS = ["webp", "avif", "jpeg"] as const;

/**
 * The mixed load of issue 18: `clients` concurrent clients for `durationMs`; each request is a new variant (45%:
 * width 200-2400 in WebP, AVIF or JPEG of an original already asked for), a new original passed through (20%), or a
 * repeat of an earlier request (35%).
 */
/** Imagika's `/img/<path>?w=&f=` in another server's URL scheme (ipx); identity for Imagika. */
export type PathMapper = (imagikaPath: string) => string;
const asIs: PathMapper = (path) => path;

export async function runMixedMemoryLoad(options: {
  readonly url: string;
  readonly mapPath?: PathMapper;
  readonly clients: number;
  readonly durationMs: number;
  readonly seed: number;
}): Promise<LoadResult> {
  const random = createRandom(options.seed);
  const agent = new Agent({ connections: options.clients, keepAliveTimeout: 30_000 });
  const history: string[] = [];
  let nextOriginal = 0;
  const nextPath = (): string => {
    const roll = random();
    if (roll < 0.35 && history.length > 0) return history[Math.floor(random() * history.length)]!; // in range
    if (roll < 0.55 || nextOriginal < 4) return `/img/p/${nextOriginal++}.jpg`;
    const original = Math.floor(random() * nextOriginal);
    const width = 200 + Math.floor(random() * 2201);
    const format = FORMATS[Math.floor(random() * FORMATS.length)]!; // in range
    return `/img/p/${original}.jpg?w=${width}&f=${format}`;
  };
  const byStatus: Record<string, number> = {};
  let shedWithRetryAfter = 0;
  let requests = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;
  const client = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const path = nextPath();
      let status = "error";
      try {
        const res = await request(options.url + (options.mapPath ?? asIs)(path), {
          dispatcher: agent,
          headersTimeout: 60_000,
          bodyTimeout: 60_000,
        });
        await res.body.dump({ limit: Number.MAX_SAFE_INTEGER });
        status = String(res.statusCode);
        if (res.statusCode === 503 && res.headers["retry-after"] !== undefined) shedWithRetryAfter++;
        if (res.statusCode === 200) history.push(path);
        if (res.statusCode === 503) await sleep(50); // a client backs off a little, as browsers do
      } catch {
        await sleep(50);
      }
      requests++;
      byStatus[status] = (byStatus[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: options.clients }, client));
  const durationMs = performance.now() - started;
  await agent.close();
  return { requests, durationMs, byStatus, shedWithRetryAfter };
}

/** `clients` concurrent requests for one new AVIF variant plus one cold AVIF variant of each of `others` originals. */
export async function runAvifHerd(options: {
  readonly url: string;
  readonly mapPath?: PathMapper;
  readonly clients: number;
  readonly others: number;
  readonly firstOriginal: number;
}): Promise<LoadResult> {
  const agent = new Agent({ connections: options.clients + options.others });
  const byStatus: Record<string, number> = {};
  let shedWithRetryAfter = 0;
  const get = async (path: string): Promise<void> => {
    let status = "error";
    try {
      const res = await request(options.url + path, {
        dispatcher: agent,
        headersTimeout: 120_000,
        bodyTimeout: 120_000,
      });
      await res.body.dump({ limit: Number.MAX_SAFE_INTEGER });
      status = String(res.statusCode);
      if (res.statusCode === 503 && res.headers["retry-after"] !== undefined) shedWithRetryAfter++;
    } catch {
      /* counted as error */
    }
    byStatus[status] = (byStatus[status] ?? 0) + 1;
  };
  const started = performance.now();
  const herdPath = `/img/p/${options.firstOriginal}.jpg?w=1600&f=avif`;
  await Promise.all([
    ...Array.from({ length: options.clients }, () => get(herdPath)),
    ...Array.from({ length: options.others }, (_, i) =>
      get(`/img/p/${options.firstOriginal + 1 + i}.jpg?w=1280&f=avif`),
    ),
  ]);
  const durationMs = performance.now() - started;
  await agent.close();
  return { requests: options.clients + options.others, durationMs, byStatus, shedWithRetryAfter };
}

/** `count` distinct originals passed through, `concurrency` at a time. */
export async function runDistinctOriginals(options: {
  readonly url: string;
  readonly mapPath?: PathMapper;
  readonly count: number;
  readonly concurrency: number;
  readonly firstOriginal: number;
}): Promise<LoadResult> {
  const agent = new Agent({ connections: options.concurrency });
  const byStatus: Record<string, number> = {};
  let next = 0;
  const started = performance.now();
  const client = async (): Promise<void> => {
    while (next < options.count) {
      const n = options.firstOriginal + next++;
      let status = "error";
      try {
        const res = await request(options.url + (options.mapPath ?? asIs)(`/img/p/${n}.jpg`), { dispatcher: agent });
        await res.body.dump({ limit: Number.MAX_SAFE_INTEGER });
        status = String(res.statusCode);
      } catch {
        /* counted as error */
      }
      byStatus[status] = (byStatus[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, client));
  const durationMs = performance.now() - started;
  await agent.close();
  return { requests: options.count, durationMs, byStatus, shedWithRetryAfter: 0 };
}

/** ipx's scheme for the same requests: `/<modifiers or _>/<origin URL of the original>`. */
export function ipxPathMapper(originUrl: string): PathMapper {
  const base = originUrl.replace(/\/$/, "");
  return (path) => {
    const [pathname = "", query = ""] = path.split("?");
    const original = pathname.replace(/^\/img/, "");
    const params = new URLSearchParams(query);
    const modifiers = [...params].map(([key, value]) => `${key}_${value}`).join(",");
    return `/${modifiers === "" ? "_" : modifiers}/${base}${original}`;
  };
}
