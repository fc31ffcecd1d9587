import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeJpeg } from "../helpers/images.ts";
import { bytesRoute, startTestOrigin } from "../helpers/test-origin.ts";
import type { TestOrigin } from "../helpers/test-origin.ts";

const BIN = fileURLToPath(new URL("../../bin/imagika.js", import.meta.url));
const MiB = 1024 * 1024;
const ORIGINALS = 8;

interface MemoryStats {
  limitBytes: number;
  rssBytes: number;
  cacheBytes: number;
  cacheRoomBytes: number;
  cacheFloorBytes: number;
  reservedBytes: number;
  leases: number;
  waiting: number;
  shed: number;
  tooLarge: number;
}

interface Stats {
  memory: MemoryStats;
  transforms: number;
  transformsRejected: number;
  cache: { bytes: number };
}

/**
 * The proxy as its own process (as operators run it, through bin/imagika.js), so its memory accounting is its own:
 * a small --memory-limit, a queue of 2 and concurrent cold transforms and pass-throughs of 4K JPEGs.
 */
async function startProxyProcess(originUrl: string, args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [BIN, "proxy", "--port", "0", "--origin", originUrl, "--rate-limit", "0", "--log-level", "info", ...args],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n").find((text) => text.includes("listening"));
      if (line) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.on("exit", (code) => reject(new Error(`the proxy exited with ${code}: ${stderr}`)));
  });
  return { url, child };
}

async function stats(url: string): Promise<Stats> {
  return (await (await fetch(`${url}/api/stats`)).json()) as Stats;
}

describe("memory limit (a real proxy process with --memory-limit 320MiB)", () => {
  let origin: TestOrigin;
  let proxy: { url: string; child: ChildProcess };

  beforeAll(async () => {
    origin = await startTestOrigin();
    for (let i = 0; i < ORIGINALS; i++)
      origin.set(`/p${i}.jpg`, bytesRoute(await makeJpeg(3840, 2160, i + 1, 90), "image/jpeg"));
    proxy = await startProxyProcess(origin.url, ["--memory-limit", "320MiB", "--transform-queue", "2"]);
  }, 60_000);

  afterAll(async () => {
    proxy?.child.kill("SIGTERM");
    await origin?.close();
  });

  it("refuses at once with 413 a transform whose working set could never fit, without decoding it", async () => {
    const before = await stats(proxy.url);
    const res = await fetch(`${proxy.url}/img/p0.jpg?w=8192&h=8192&fit=fill&enlarge=1&f=avif`);
    expect(res.status).toBe(413);
    const body = (await res.json()) as { error: string; message: string };
    expect(body.error).toBe("SOURCE_TOO_LARGE");
    expect(body.message).toMatch(/memory limit/);
    const after = await stats(proxy.url);
    expect(after.memory.tooLarge).toBe(before.memory.tooLarge + 1);
    expect(after.transforms).toBe(before.transforms);
    expect(after.memory.limitBytes).toBe(320 * MiB);
  });

  it("holds concurrent cold work inside the budget: leases taken and all released, sheds counted, nothing half-made cached", async () => {
    const paths = [
      ...Array.from({ length: ORIGINALS }, (_, i) => `/img/p${i}.jpg?w=2400&f=avif`),
      ...Array.from({ length: ORIGINALS }, (_, i) => `/img/p${i}.jpg?w=1800&f=webp`),
      ...Array.from({ length: ORIGINALS }, (_, i) => `/img/p${i}.jpg`),
    ];
    const seen: MemoryStats[] = [];
    let isLoading = true;
    const poll = (async () => {
      while (isLoading) {
        seen.push((await stats(proxy.url)).memory);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    const results = await Promise.all(
      paths.map(async (path) => {
        const res = await fetch(proxy.url + path, { headers: { accept: "image/avif,image/webp" } });
        const body = Buffer.from(await res.arrayBuffer());
        return { path, status: res.status, body, retryAfter: res.headers.get("retry-after") };
      }),
    );
    isLoading = false;
    await poll;

    const refused = results.filter((r) => r.status === 503);
    for (const result of results) {
      expect([200, 503]).toContain(result.status);
      if (result.status === 503) {
        expect(result.retryAfter).toMatch(/^\d+$/);
        expect(JSON.parse(result.body.toString())).toMatchObject({ error: "OVERLOADED" });
      } else {
        const meta = await sharp(result.body).metadata();
        expect(meta.width).toBeGreaterThan(0);
      }
    }
    // Only 2 may wait and a 2400 px AVIF needs ~80 MiB: with 24 requests at once some must have been shed.
    expect(refused.length).toBeGreaterThan(0);
    // In-flight work was accounted while it ran, and the caches never held more than the room it left (or the floor).
    expect(Math.max(...seen.map((m) => m.reservedBytes))).toBeGreaterThan(80 * MiB);
    for (const m of seen) expect(m.cacheBytes).toBeLessThanOrEqual(Math.max(m.cacheRoomBytes, m.cacheFloorBytes));
    const after = await stats(proxy.url);
    expect(after.memory).toMatchObject({ reservedBytes: 0, leases: 0, waiting: 0 });
    // Every 503 was counted: by the memory budget or by the transform queue.
    expect(after.memory.shed + after.transformsRejected).toBeGreaterThanOrEqual(refused.length);

    // Nothing refused was remembered: asked again one at a time, each is produced whole.
    for (const result of refused) {
      const res = await fetch(proxy.url + result.path, { headers: { accept: "image/avif,image/webp" } });
      expect(res.status).toBe(200);
      const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
      expect(meta.width).toBeGreaterThan(0);
    }
    expect((await stats(proxy.url)).memory).toMatchObject({ reservedBytes: 0, leases: 0 });
  }, 120_000);

  it("reserves a download's declared length while it arrives (not a guess), and releases it when it fails", async () => {
    const declared = 40 * MiB;
    let sent: (() => void) | undefined;
    origin.set("/slow.jpg", (_req, res) => {
      res.writeHead(200, { "content-type": "image/jpeg", "content-length": declared });
      res.write(Buffer.alloc(64 * 1024));
      sent = () => res.destroy(); // the body never completes
    });
    const request = fetch(`${proxy.url}/img/slow.jpg`).then((res) => res.status);
    let reserved = 0;
    for (let i = 0; i < 200 && reserved < declared; i++) {
      reserved = (await stats(proxy.url)).memory.reservedBytes;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(reserved).toBe(declared);
    sent?.();
    expect(await request).toBe(502);
    expect((await stats(proxy.url)).memory).toMatchObject({ reservedBytes: 0, leases: 0 });
  });
});
