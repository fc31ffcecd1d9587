import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startOriginServer } from "../../origin-server/server.ts";
import type { RunningOrigin } from "../../origin-server/server.ts";
import type { App } from "../../src/app.ts";
import { makeJpeg, makePng } from "../helpers/images.ts";
import { startProxy } from "../helpers/proxy.ts";
import { destroyWireClients, WireClient } from "../helpers/wire-client.ts";

let dir: string;
/** Originals whose names the listing test should not see. */
let oddDir: string;
let origin: RunningOrigin;
const apps: App[] = [];

async function proxyFor(
  overrides: Omit<Parameters<typeof startProxy>[0], "origin"> & { origin?: string } = {},
): Promise<App> {
  const app = await startProxy({ origin: origin.url, ...overrides });
  apps.push(app);
  return app;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "imagika-api-"));
  await writeFile(join(dir, "a.jpg"), await makeJpeg(320, 200, 1));
  await writeFile(join(dir, "b.png"), await makePng(100, 150, 2));
  oddDir = await mkdtemp(join(tmpdir(), "imagika-api-odd-"));
  await writeFile(join(oddDir, "q"), await makePng(40, 30, 3));
  await writeFile(join(oddDir, "q?x.jpg"), await makeJpeg(60, 40, 4)); // requested as /img/q%3Fx.jpg
  await mkdir(join(oddDir, "photos"));
  await writeFile(join(oddDir, "photos", "cat.jpg"), await makeJpeg(50, 40, 5));
  await writeFile(join(oddDir, "photos", "dog.jpg"), await makeJpeg(50, 40, 6));
  await writeFile(join(oddDir, "photography.jpg"), await makeJpeg(50, 40, 7));
  origin = await startOriginServer({ dir, port: 0, host: "127.0.0.1", latencyMs: 0, bandwidthBytesPerSecond: 0 });
});

afterEach(destroyWireClients);

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await origin.close();
});

describe("admin purge", () => {
  it("does not exist without an admin token", async () => {
    const app = await proxyFor();
    const res = await fetch(`${app.url}/api/cache`, { method: "DELETE", headers: { authorization: "Bearer x" } });
    expect(res.status).toBe(404);
  });

  it("needs the bearer token, then purges one image with all its variants, or everything", async () => {
    const app = await proxyFor({ adminToken: "s3cret" });
    for (const path of ["/img/a.jpg", "/img/a.jpg?w=100&f=webp", "/img/a.jpg?w=50&f=png", "/img/b.png?w=20"]) {
      expect((await fetch(`${app.url}${path}`)).status).toBe(200);
    }
    expect(app.originals.stats().entries + app.variants.stats().entries).toBe(5);
    expect((await fetch(`${app.url}/api/cache/a.jpg`, { method: "DELETE" })).status).toBe(401);
    expect(
      (await fetch(`${app.url}/api/cache/a.jpg`, { method: "DELETE", headers: { authorization: "Bearer wrong!" } }))
        .status,
    ).toBe(401);
    expect((await fetch(`${app.url}/api/cache/a.jpg`, { headers: { authorization: "Bearer s3cret" } })).status).toBe(
      405,
    );
    const one = await fetch(`${app.url}/api/cache/a.jpg`, {
      method: "DELETE",
      headers: { authorization: "Bearer s3cret" },
    });
    expect(await one.json()).toEqual({ path: "a.jpg", purged: 3 });
    expect(app.originals.keys()).toEqual(["o:b.png"]);
    const before = origin.requestCount();
    expect((await fetch(`${app.url}/img/a.jpg?w=100&f=webp`)).headers.get("x-cache")).toBe("MISS");
    expect(origin.requestCount()).toBe(before + 1);
    const all = await fetch(`${app.url}/api/cache`, { method: "DELETE", headers: { authorization: "Bearer s3cret" } });
    expect(((await all.json()) as { purged: number }).purged).toBe(4);
    expect(app.originals.stats().bytes + app.variants.stats().bytes).toBe(0);
  });
});

const ADMIN = { authorization: "Bearer s3cret" };

/** Over a raw socket: fetch() drops an empty query ("/api/cache?" goes out as "/api/cache"). */
async function purge(app: App, target: string): Promise<{ status: number; body: unknown }> {
  const client = await WireClient.open(Number(new URL(app.url).port));
  client.write(`DELETE ${target} HTTP/1.1\r\nhost: x\r\nauthorization: ${ADMIN.authorization}\r\n\r\n`);
  const res = await client.read("DELETE");
  return { status: res.status, body: JSON.parse(res.body.toString("utf8")) as unknown };
}

describe("purge keys", () => {
  it("purges a path without touching a longer path that continues with '?' (decoded %3F)", async () => {
    const app = await proxyFor({ adminToken: "s3cret", origin: oddDir });
    for (const path of ["/img/q?w=20", "/img/q%3Fx.jpg?w=30", "/img/q%3Fx.jpg"]) {
      expect((await fetch(`${app.url}${path}`)).status).toBe(200);
    }
    expect(await purge(app, "/api/cache/q")).toEqual({ status: 200, body: { path: "q", purged: 2 } });
    expect(app.originals.keys()).toEqual(["o:q?x.jpg"]);
    expect(app.variants.stats().entries).toBe(1);
    expect((await fetch(`${app.url}/img/q%3Fx.jpg?w=30`)).headers.get("x-cache")).toBe("HIT");
  });
});

describe("purge forms", () => {
  async function warmed(): Promise<App> {
    const app = await proxyFor({ adminToken: "s3cret", origin: oddDir });
    for (const path of [
      "/img/photos/cat.jpg",
      "/img/photos/cat.jpg?w=20",
      "/img/photos/dog.jpg?w=20",
      "/img/photography.jpg?w=20",
      "/img/q?w=20",
    ]) {
      expect((await fetch(`${app.url}${path}`)).status).toBe(200);
    }
    expect(entries(app)).toBe(8); // 4 originals, 4 variants
    return app;
  }

  function entries(app: App): number {
    return app.originals.stats().entries + app.variants.stats().entries;
  }

  it("refuses a query or an empty path instead of purging everything, and purges nothing then", async () => {
    const app = await warmed();
    const refused: [string, string, RegExp][] = [
      ["/api/cache?path=photos/cat.jpg", "INVALID_OPTIONS", /path/],
      ["/api/cache?", "INVALID_OPTIONS", /empty query/],
      ["/api/cache?all=1", "INVALID_OPTIONS", /all/],
      ["/api/cache?prefix=", "INVALID_OPTIONS", /prefix/],
      ["/api/cache?prefix=a&prefix=b", "INVALID_OPTIONS", /prefix/],
      ["/api/cache/", "INVALID_PATH", /names no image/],
      ["/api/cache/?x", "INVALID_PATH", /names no image/],
      ["/api/cache/photos/cat.jpg?all=0", "INVALID_OPTIONS", /query/],
      ["/api/cache/photos/cat.jpg?", "INVALID_OPTIONS", /query/],
    ];
    for (const [target, error, message] of refused) {
      const { status, body } = await purge(app, target);
      expect({ target, status, error: (body as { error: string }).error }).toEqual({ target, status: 400, error });
      expect((body as { message: string }).message).toMatch(message);
      expect(entries(app)).toBe(8);
    }
  });

  it("purges by path prefix: originals and variants whose path starts with it, nothing else", async () => {
    const app = await warmed();
    expect(await purge(app, "/api/cache?prefix=photos/")).toEqual({
      status: 200,
      body: { prefix: "photos/", purged: 4 },
    });
    expect(app.originals.keys().sort()).toEqual(["o:photography.jpg", "o:q"]);
    expect(await purge(app, "/api/cache?prefix=photo")).toEqual({ status: 200, body: { prefix: "photo", purged: 2 } });
    expect(app.originals.keys()).toEqual(["o:q"]);
    expect((await fetch(`${app.url}/img/q?w=20`)).headers.get("x-cache")).toBe("HIT");
  });

  it("still purges everything and one path in the documented forms", async () => {
    const app = await warmed();
    expect(await purge(app, "/api/cache/photos/cat.jpg")).toEqual({
      status: 200,
      body: { path: "photos/cat.jpg", purged: 2 },
    });
    expect(await purge(app, "/api/cache")).toEqual({ status: 200, body: { purged: 6 } });
    expect(entries(app)).toBe(0);
  });
});

describe("purging remote sources", () => {
  it("purges one remote URL (normalised like /img?url=) without touching the same URL with a query", async () => {
    const app = await proxyFor({ adminToken: "s3cret", allowedSources: ["127.0.0.1"], allowPrivateOrigins: true });
    const plain = new URL("a.jpg", origin.url).href;
    const queried = `${plain}?v=2`;
    for (const source of [plain, queried]) {
      for (const options of ["", "&w=40"]) {
        const res = await fetch(`${app.url}/img?url=${encodeURIComponent(source)}${options}`);
        expect(res.status).toBe(200);
      }
    }
    expect(app.originals.stats().entries + app.variants.stats().entries).toBe(4);
    const shouting = plain.replace("http://", "HTTP://") + "#fragment"; // the same source once normalised
    expect(await purge(app, `/api/cache?url=${encodeURIComponent(shouting)}`)).toEqual({
      status: 200,
      body: { url: plain, purged: 2 },
    });
    expect(app.originals.keys()).toEqual([`o:${queried}`]);
    expect(await purge(app, `/api/cache?url=${encodeURIComponent(queried)}`)).toEqual({
      status: 200,
      body: { url: queried, purged: 2 },
    });
    expect(app.originals.stats().entries + app.variants.stats().entries).toBe(0);
  });

  it("refuses a url that is not an absolute http(s) URL, and a url given with a prefix", async () => {
    const app = await proxyFor({ adminToken: "s3cret" });
    for (const [target, message] of [
      ["/api/cache?url=a.jpg", /absolute/],
      ["/api/cache?url=", /url/],
      ["/api/cache?url=http://h/a&url=http://h/b", /url/],
      ["/api/cache?prefix=a&url=http://h/a", /one of/],
    ] as const) {
      const { status, body } = await purge(app, target);
      expect({ target, status, error: (body as { error: string }).error }).toEqual({
        target,
        status: 400,
        error: "INVALID_OPTIONS",
      });
      expect((body as { message: string }).message).toMatch(message);
    }
  });
});

describe("listing, metrics and request ids", () => {
  it("relays the origin's listing at /api/images, from an HTTP origin and from a directory", async () => {
    for (const app of [await proxyFor(), await proxyFor({ origin: dir })]) {
      const res = await fetch(`${app.url}/api/images`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as {
        images: Array<{ path: string; width: number; height: number; format: string }>;
      };
      expect(body.images.map((i) => [i.path, i.width, i.height, i.format])).toEqual([
        ["a.jpg", 320, 200, "jpeg"],
        ["b.png", 100, 150, "png"],
      ]);
    }
  });

  it("lists the presets at /api/presets in file order, as written, and says when they are all it accepts", async () => {
    const presets = { thumb: "w=160&h=160&fit=cover&gravity=attention", hero: "w=1200&q=70" };
    const app = await proxyFor({ presets, presetsOnly: true });
    const res = await fetch(`${app.url}/api/presets`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      presets: [
        { name: "thumb", options: "w=160&h=160&fit=cover&gravity=attention" },
        { name: "hero", options: "w=1200&q=70" },
      ],
      presetsOnly: true,
    });
    const none = await fetch(`${(await proxyFor()).url}/api/presets`);
    expect(await none.json()).toEqual({ presets: [], presetsOnly: false });
  });

  it("exposes Prometheus metrics for requests, stages, caches and the origin", async () => {
    const app = await proxyFor();
    await (await fetch(`${app.url}/img/a.jpg?w=64&f=webp`)).arrayBuffer();
    await (await fetch(`${app.url}/img/a.jpg?w=64&f=webp`)).arrayBuffer();
    await (await fetch(`${app.url}/img/missing.jpg`)).arrayBuffer();
    const res = await fetch(`${app.url}/metrics`);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    expect(text).toMatch(/imagika_http_requests_total\{route="img",status="200",cache="miss"\} 1/);
    expect(text).toMatch(/imagika_http_requests_total\{route="img",status="200",cache="hit"\} 1/);
    expect(text).toMatch(/imagika_http_requests_total\{route="img",status="404",cache="none"\} 1/);
    expect(text).toMatch(/imagika_stage_duration_seconds_count\{stage="transform",format="webp"\} 1/);
    expect(text).toMatch(/imagika_stage_duration_seconds_count\{stage="origin",format="none"\} 1/);
    expect(text).toMatch(/imagika_cache_entries\{tier="memory-variants"\} 1/);
    expect(text).toMatch(/imagika_origin_fetches_total 2/);
    expect(text).toMatch(/imagika_origin_errors_total\{code="ORIGIN_NOT_FOUND"\} 1/);
    expect(text).toMatch(/imagika_transforms_total 1/);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
  });

  it("returns the caller's X-Request-Id or makes one", async () => {
    const app = await proxyFor();
    const given = await fetch(`${app.url}/healthz`, { headers: { "x-request-id": "abc-123" } });
    expect(given.headers.get("x-request-id")).toBe("abc-123");
    const made = await fetch(`${app.url}/healthz`, { headers: { "x-request-id": "bad id with spaces" } });
    expect(made.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("fails readiness once shutting down, and when the origin is gone", async () => {
    const app = await startProxy({ origin: origin.url });
    expect((await fetch(`${app.url}/readyz`)).status).toBe(200);
    const closing = app.close();
    expect(app.http.isShuttingDown()).toBe(true);
    await expect(fetch(`${app.url}/readyz`)).rejects.toThrow(); // no longer accepting: probes fail
    await closing;
    const orphan = await proxyFor({ origin: "http://127.0.0.1:9/", originConnectTimeoutMs: 200 });
    const res = await fetch(`${orphan.url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: "ORIGIN_UNREACHABLE" });
  });
});
