import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imageFacts, makeJpeg } from "../helpers/images.ts";
import { connectRedis, deletePrefix, freePort, SHARED_REDIS_URL, uniquePrefix } from "../helpers/redis.ts";
import type { TestRedisClient } from "../helpers/redis.ts";
import { bytesRoute, startTestOrigin } from "../helpers/test-origin.ts";
import type { TestOrigin } from "../helpers/test-origin.ts";

/** Real proxy processes (`node --import tsx src/main.ts proxy ...`), as operators run them. */
const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));

interface ProxyProcess {
  readonly url: string;
  readonly child: ChildProcess;
  output(): string;
  /** SIGTERM by PID, then waits for the exit (graceful shutdown). */
  stop(): Promise<void>;
}

const running = new Set<ProxyProcess>();
let redis: TestRedisClient;
let origin: TestOrigin;
let jpeg: Buffer;
const prefixes: string[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  redis = await connectRedis(); // fails loudly when Redis is absent
  jpeg = await makeJpeg(1024, 768, 5);
  origin = await startTestOrigin();
});

afterAll(async () => {
  await Promise.all([...running].map((proxy) => proxy.stop()));
  await origin.close();
  for (const prefix of prefixes) await deletePrefix(redis, prefix);
  await redis.close();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function spawnProxy(args: string[], port?: number): Promise<ProxyProcess> {
  const chosen = port ?? (await freePort());
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "src/main.ts", "proxy", "--port", String(chosen), "--origin", origin.url, ...args],
    { cwd: REPO_ROOT, env: { ...process.env, IMAGIKA_LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolveExit) => child.once("exit", () => resolveExit()));
  const url = `http://127.0.0.1:${chosen}`;
  const proxy: ProxyProcess = {
    url,
    child,
    output: () => output,
    stop: async () => {
      running.delete(proxy);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
  running.add(proxy);
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) throw new Error(`proxy exited at start:\n${output}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return proxy;
    } catch {
      /* not listening yet */
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  }
  throw new Error(`proxy did not start:\n${output}`);
}

function prefixArg(): string[] {
  const prefix = uniquePrefix();
  prefixes.push(prefix);
  return ["--redis-url", SHARED_REDIS_URL, "--redis-key-prefix", prefix];
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "imagika-scale-"));
  dirs.push(dir);
  return dir;
}

async function transformsOf(url: string): Promise<number> {
  return ((await (await fetch(`${url}/api/stats`)).json()) as { transforms: number }).transforms;
}

describe("proxy processes sharing disk and Redis", () => {
  it("keeps disk entries across a restart and serves them without the origin", async () => {
    const dir = await tempDir();
    origin.set("/persist.jpg", bytesRoute(jpeg, "image/jpeg"));
    const port = await freePort();
    const first = await spawnProxy(["--disk-cache-dir", dir, "--rate-limit", "0"], port);
    const cold = await fetch(`${first.url}/img/persist.jpg?w=240&f=webp`);
    expect(cold.headers.get("x-cache")).toBe("MISS");
    await cold.arrayBuffer();
    await first.stop();

    const second = await spawnProxy(["--disk-cache-dir", dir, "--rate-limit", "0"], port);
    const warm = await fetch(`${second.url}/img/persist.jpg?w=240&f=webp`);
    expect(warm.status).toBe(200);
    expect(warm.headers.get("x-cache")).toBe("HIT");
    expect(await imageFacts(Buffer.from(await warm.arrayBuffer()))).toMatchObject({ format: "webp", width: 240 });
    expect(origin.count("/persist.jpg")).toBe(1);
    const metrics = await (await fetch(`${second.url}/metrics`)).text();
    expect(metrics).toMatch(/imagika_cache_entries\{tier="disk"\} [1-9]/);
    await second.stop();
  });

  it("answers 3 x 100 concurrent cold requests over three processes with one fetch and one transform", async () => {
    const redisArgs = prefixArg();
    const three = await Promise.all([0, 1, 2].map(() => spawnProxy([...redisArgs, "--rate-limit", "0"])));
    origin.set("/stampede.jpg", bytesRoute(jpeg, "image/jpeg", 300));
    const responses = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const res = await fetch(`${three[i % 3]!.url}/img/stampede.jpg?w=300&f=webp`);
        return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
      }),
    );
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(await imageFacts(responses[299]!.body)).toMatchObject({ format: "webp", width: 300 });
    expect(origin.count("/stampede.jpg")).toBe(1);
    const transforms = await Promise.all(three.map((proxy) => transformsOf(proxy.url)));
    expect(transforms.reduce((a, b) => a + b, 0)).toBe(1);
    await Promise.all(three.map((proxy) => proxy.stop()));
  });

  it("runs --workers 2 on one port sharing the disk tier and Redis: a cold stampede costs one origin fetch", async () => {
    const dir = await tempDir();
    const workers = await spawnProxy(["--workers", "2", "--disk-cache-dir", dir, ...prefixArg(), "--rate-limit", "0"]);
    origin.set("/workers.jpg", bytesRoute(jpeg, "image/jpeg", 300));
    const responses = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const res = await fetch(`${workers.url}/img/workers.jpg?w=200&f=jpeg`, { headers: { connection: "close" } });
        await res.arrayBuffer();
        return res.status;
      }),
    );
    expect(responses.every((status) => status === 200)).toBe(true);
    expect(origin.count("/workers.jpg")).toBe(1);
    const pid = workers.child.pid ?? 0;
    const children = (await readFile(`/proc/${pid}/task/${pid}/children`, "utf8")).trim().split(/\s+/);
    expect(children).toHaveLength(2);
    await workers.stop();
    expect(workers.child.exitCode).toBe(0);
  });

  it("answers /metrics and /api/stats for every --workers worker, whichever one the scrape reaches", async () => {
    const workers = await spawnProxy(["--workers", "2", "--rate-limit", "0"]);
    origin.set("/counted.jpg", bytesRoute(jpeg, "image/jpeg"));
    // One connection per request: the primary hands connections to the workers in turn, once both listen (the
    // second may still be starting when /healthz first answers). Each worker has its own memory cache, so the
    // origin count reaching 2 means both have served; then 10 more requests.
    let sent = 0;
    const get = async (): Promise<void> => {
      const res = await fetch(`${workers.url}/img/counted.jpg`, { headers: { connection: "close" } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      sent++;
    };
    while (origin.count("/counted.jpg") < 2 && sent < 500) await get();
    for (let i = 0; i < 10; i++) await get();
    expect(origin.count("/counted.jpg")).toBe(2);

    for (let scrape = 0; scrape < 4; scrape++) {
      const stats = (await (await fetch(`${workers.url}/api/stats`, { headers: { connection: "close" } })).json()) as {
        workers: number;
        hits: number;
        misses: number;
        originFetches: number;
        hitRatio: number;
      };
      expect(stats).toMatchObject({ workers: 2, hits: sent - 2, misses: 2, originFetches: 2 });
      expect(stats.hitRatio).toBeCloseTo((sent - 2) / sent);

      const text = await (await fetch(`${workers.url}/metrics`, { headers: { connection: "close" } })).text();
      const images = [...text.matchAll(/^imagika_http_requests_total\{([^}]*)\} (\d+)$/gm)].filter(([, labels]) =>
        labels!.includes('route="img"'),
      );
      const byWorker = new Map<string, number>();
      for (const [, labels, value] of images) {
        const worker = /worker="(\d+)"/.exec(labels!)?.[1] ?? "none";
        byWorker.set(worker, (byWorker.get(worker) ?? 0) + Number(value));
      }
      expect(byWorker.size).toBe(2); // both workers' series, each labelled with its id
      expect(byWorker.has("none")).toBe(false);
      expect([...byWorker.values()].reduce((a, b) => a + b, 0)).toBe(sent);
      expect(text.match(/^# TYPE imagika_http_requests_total counter$/gm)).toHaveLength(1);
    }
    await workers.stop();
  });
});
