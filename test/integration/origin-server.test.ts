import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, symlink, unlink, writeFile } from "node:fs/promises";
import { request } from "node:http";
import type { IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOriginServer } from "../../origin-server/server.ts";
import type { OriginServerOptions, RunningOrigin } from "../../origin-server/server.ts";

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** node:http sends the path exactly as given; fetch would normalise `..` and `%2e%2e` before they reach the server. */
function send(
  origin: RunningOrigin,
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: origin.port,
        path,
        method: options.method ?? "GET",
        headers: options.headers ?? {},
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

function jsonOf(response: RawResponse): unknown {
  return JSON.parse(response.body.toString("utf8"));
}

async function startOrigin(dir: string, overrides: Partial<OriginServerOptions> = {}): Promise<RunningOrigin> {
  return startOriginServer({ dir, port: 0, host: "127.0.0.1", latencyMs: 0, bandwidthBytesPerSecond: 0, ...overrides });
}

function solid(width: number, height: number, color: { r: number; g: number; b: number }) {
  return sharp({ create: { width, height, channels: 3, background: color } });
}

let base: string;
let root: string;
let photo: Buffer;
let origin: RunningOrigin;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), "imagika-origin-"));
  root = join(base, "root");
  await mkdir(join(root, "sub", "deeper"), { recursive: true });
  await mkdir(join(base, "outside"));
  photo = await solid(64, 48, { r: 200, g: 80, b: 40 }).jpeg({ quality: 80 }).toBuffer();
  await writeFile(join(root, "photo.jpg"), photo);
  await solid(30, 20, { r: 10, g: 120, b: 200 })
    .png()
    .toFile(join(root, "sub", "pic.png"));
  await solid(16, 16, { r: 90, g: 90, b: 90 })
    .webp()
    .toFile(join(root, "sub", "deeper", "tile.webp"));
  // 40x20 stored pixels with orientation 6: displayed 20x40.
  await solid(40, 20, { r: 0, g: 200, b: 0 }).jpeg().withMetadata({ orientation: 6 }).toFile(join(root, "rotated.jpg"));
  await writeFile(join(root, "notes.txt"), "PLAIN-TEXT-NOTES");
  await writeFile(join(root, ".hidden.jpg"), photo);
  await writeFile(join(base, "outside", "secret.jpg"), Buffer.from("SECRET-OUTSIDE-THE-ROOT"));
  await symlink(join(base, "outside", "secret.jpg"), join(root, "escape.jpg"));
  await symlink(join(base, "outside"), join(root, "outside-dir"));
  await symlink(join(root, "photo.jpg"), join(root, "alias.jpg"));
  await symlink(join(root, "notes.txt"), join(root, "notes-in-disguise.jpg"));
  origin = await startOrigin(root);
});

afterAll(async () => {
  await origin.close();
  await rm(base, { recursive: true, force: true });
});

describe("origin server: serving images", () => {
  it("serves an image with its type, length, validators and Accept-Ranges", async () => {
    const before = origin.requestCount();
    const res = await send(origin, "/photo.jpg");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("image/jpeg");
    expect(res.headers["content-length"]).toBe(String(photo.length));
    expect(res.headers["accept-ranges"]).toBe("bytes");
    expect(res.headers.etag).toMatch(/^"[^"]+"$/); // strong: no W/ prefix
    expect(Number.isNaN(Date.parse(res.headers["last-modified"] ?? ""))).toBe(false);
    expect(res.body.equals(photo)).toBe(true);
    expect(origin.requestCount()).toBe(before + 1);
  });

  it("serves images in subfolders with the type from the extension", async () => {
    expect((await send(origin, "/sub/pic.png")).headers["content-type"]).toBe("image/png");
    expect((await send(origin, "/sub/deeper/tile.webp")).headers["content-type"]).toBe("image/webp");
  });

  it("answers HEAD with the same headers and no body", async () => {
    const get = await send(origin, "/photo.jpg");
    const head = await send(origin, "/photo.jpg", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    for (const name of ["content-type", "content-length", "etag", "last-modified", "accept-ranges"]) {
      expect(head.headers[name]).toBe(get.headers[name]);
    }
  });

  it("answers 304 to a matching If-None-Match, weak or in a list, and 200 otherwise", async () => {
    const { headers } = await send(origin, "/photo.jpg");
    const etag = headers.etag ?? "";
    for (const condition of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
      const res = await send(origin, "/photo.jpg", { headers: { "If-None-Match": condition } });
      expect(res.status).toBe(304);
      expect(res.body.length).toBe(0);
      expect(res.headers.etag).toBe(etag);
    }
    expect((await send(origin, "/photo.jpg", { headers: { "If-None-Match": '"stale"' } })).status).toBe(200);
  });

  it("answers 304 to If-Modified-Since at or after Last-Modified, and If-None-Match takes precedence", async () => {
    const { headers } = await send(origin, "/photo.jpg");
    const lastModified = headers["last-modified"] ?? "";
    expect((await send(origin, "/photo.jpg", { headers: { "If-Modified-Since": lastModified } })).status).toBe(304);
    const later = new Date(Date.parse(lastModified) + 60_000).toUTCString();
    expect((await send(origin, "/photo.jpg", { headers: { "If-Modified-Since": later } })).status).toBe(304);
    const earlier = new Date(Date.parse(lastModified) - 60_000).toUTCString();
    expect((await send(origin, "/photo.jpg", { headers: { "If-Modified-Since": earlier } })).status).toBe(200);
    const both = { "If-None-Match": '"stale"', "If-Modified-Since": later };
    expect((await send(origin, "/photo.jpg", { headers: both })).status).toBe(200);
  });

  it("serves single byte ranges with 206 and Content-Range", async () => {
    const size = photo.length;
    const cases: [string, number, number][] = [
      ["bytes=0-99", 0, 99],
      ["bytes=100-", 100, size - 1],
      ["bytes=-50", size - 50, size - 1],
      [`bytes=10-${size + 1000}`, 10, size - 1],
    ];
    for (const [range, start, end] of cases) {
      const res = await send(origin, "/photo.jpg", { headers: { Range: range } });
      expect(res.status, range).toBe(206);
      expect(res.headers["content-range"]).toBe(`bytes ${start}-${end}/${size}`);
      expect(res.headers["content-length"]).toBe(String(end - start + 1));
      expect(res.body.equals(photo.subarray(start, end + 1))).toBe(true);
    }
  });

  it("answers 416 with Content-Range */size when the range starts past the end", async () => {
    const res = await send(origin, "/photo.jpg", { headers: { Range: `bytes=${photo.length}-` } });
    expect(res.status).toBe(416);
    expect(res.headers["content-range"]).toBe(`bytes */${photo.length}`);
    expect(jsonOf(res)).toMatchObject({ error: "RANGE_NOT_SATISFIABLE" });
    expect((await send(origin, "/photo.jpg", { headers: { Range: "bytes=-0" } })).status).toBe(416);
  });

  it("sends the whole body for multiple ranges, malformed ranges and a stale If-Range", async () => {
    for (const headers of [
      { Range: "bytes=0-1,5-9" },
      { Range: "lines=1-2" },
      { Range: "bytes=9-1" },
      { Range: "bytes=0-9", "If-Range": '"stale"' },
    ]) {
      const res = await send(origin, "/photo.jpg", { headers });
      expect(res.status, JSON.stringify(headers)).toBe(200);
      expect(res.body.length).toBe(photo.length);
    }
    const { headers } = await send(origin, "/photo.jpg");
    const fresh = await send(origin, "/photo.jpg", { headers: { Range: "bytes=0-9", "If-Range": headers.etag ?? "" } });
    expect(fresh.status).toBe(206);
  });

  it("follows a symlink that stays inside the root", async () => {
    const res = await send(origin, "/alias.jpg");
    expect(res.status).toBe(200);
    expect(res.body.equals(photo)).toBe(true);
  });
});

describe("origin server: refusals", () => {
  it("answers 404 with a JSON error for a missing image", async () => {
    const res = await send(origin, "/missing.jpg");
    expect(res.status).toBe(404);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(jsonOf(res)).toEqual({ error: "NOT_FOUND", message: expect.any(String) as string });
  });

  it("never serves non-images, hidden files or directories, and never lists a directory", async () => {
    for (const path of ["/notes.txt", "/.hidden.jpg", "/sub", "/sub/", "/", "/sub/deeper/", "/package.json"]) {
      const res = await send(origin, path);
      expect(res.status, path).toBe(404);
      expect(res.body.toString()).not.toContain("pic.png");
    }
  });

  it("refuses traversal in every spelling with 400 and never leaks the file outside the root", async () => {
    const attempts = [
      "/../outside/secret.jpg",
      "/sub/../../outside/secret.jpg",
      "/%2e%2e/outside/secret.jpg",
      "/%2E%2E/outside/secret.jpg",
      "/.%2e/outside/secret.jpg",
      "/sub%2f..%2f..%2foutside%2fsecret.jpg",
      "/sub/%2F/photo.jpg",
      "/%252e%252e/outside/secret.jpg",
      "/sub/%252fphoto.jpg",
      "/photo.jpg%00.png",
      "/sub\\..\\photo.jpg",
      "/sub/%5c..%5cphoto.jpg",
      "/sub//pic.png",
      "/%e0%a4%a.jpg",
      "/./photo.jpg",
    ];
    for (const path of attempts) {
      const res = await send(origin, path);
      expect(res.status, path).toBe(400);
      expect(jsonOf(res)).toMatchObject({ error: "INVALID_PATH" });
      expect(res.body.toString()).not.toContain("SECRET");
    }
  });

  it("refuses a symlink that resolves outside the root with 403", async () => {
    for (const path of ["/escape.jpg", "/outside-dir/secret.jpg"]) {
      const res = await send(origin, path);
      expect(res.status, path).toBe(403);
      expect(jsonOf(res)).toMatchObject({ error: "FORBIDDEN" });
      expect(res.body.toString()).not.toContain("SECRET");
    }
  });

  it("refuses an image-named symlink to a file that is not an image with 403", async () => {
    const res = await send(origin, "/notes-in-disguise.jpg");
    expect(res.status).toBe(403);
    expect(res.body.toString()).not.toContain("PLAIN-TEXT-NOTES");
  });

  it("answers 405 with Allow for other methods", async () => {
    const res = await send(origin, "/photo.jpg", { method: "DELETE" });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("GET, HEAD");
    expect(jsonOf(res)).toMatchObject({ error: "METHOD_NOT_ALLOWED" });
  });

  it("counts requests to image paths but not /index.json or refused non-image paths", async () => {
    const before = origin.requestCount();
    await send(origin, "/photo.jpg");
    await send(origin, "/missing.jpg");
    await send(origin, "/index.json");
    await send(origin, "/notes.txt");
    await send(origin, "/../outside/secret.jpg");
    expect(origin.requestCount()).toBe(before + 2);
  });
});

describe("origin server: /index.json", () => {
  it("lists every image with displayed dimensions, bytes and format, sorted by path", async () => {
    const res = await send(origin, "/index.json");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(jsonOf(res)).toEqual({
      images: [
        { path: "photo.jpg", width: 64, height: 48, bytes: photo.length, format: "jpeg" },
        {
          path: "rotated.jpg",
          width: 20,
          height: 40,
          bytes: expect.any(Number) as number,
          format: "jpeg",
          orientation: 6,
        },
        { path: "sub/deeper/tile.webp", width: 16, height: 16, bytes: expect.any(Number) as number, format: "webp" },
        { path: "sub/pic.png", width: 30, height: 20, bytes: expect.any(Number) as number, format: "png" },
      ],
    });
  });

  it("shows an added file on the next request and drops a removed one", async () => {
    const added = join(root, "sub", "added.png");
    await solid(12, 34, { r: 1, g: 2, b: 3 }).png().toFile(added);
    const withFile = jsonOf(await send(origin, "/index.json")) as { images: { path: string; width: number }[] };
    expect(withFile.images.map((image) => image.path)).toEqual([
      "photo.jpg",
      "rotated.jpg",
      "sub/added.png",
      "sub/deeper/tile.webp",
      "sub/pic.png",
    ]);
    expect(withFile.images.find((image) => image.path === "sub/added.png")?.width).toBe(12);

    await unlink(added);
    const without = jsonOf(await send(origin, "/index.json")) as { images: { path: string }[] };
    expect(without.images.map((image) => image.path)).not.toContain("sub/added.png");
  });

  it("leaves out files sharp cannot read", async () => {
    const broken = join(root, "broken.jpg");
    await writeFile(broken, "not really a jpeg");
    try {
      const index = jsonOf(await send(origin, "/index.json")) as { images: { path: string }[] };
      expect(index.images.map((image) => image.path)).not.toContain("broken.jpg");
    } finally {
      await unlink(broken);
    }
  });

  it("answers 304 when the index has not changed", async () => {
    const first = await send(origin, "/index.json");
    const again = await send(origin, "/index.json", { headers: { "If-None-Match": first.headers.etag ?? "" } });
    expect(again.status).toBe(304);
  });
});

describe("origin server: simulated distance", () => {
  let slowDir: string;
  const big = randomBytes(1024 * 1024);

  beforeAll(async () => {
    slowDir = await mkdtemp(join(tmpdir(), "imagika-origin-slow-"));
    await writeFile(join(slowDir, "big.jpg"), big);
  });

  afterAll(async () => {
    await rm(slowDir, { recursive: true, force: true });
  });

  it("waits latencyMs before the first byte", async () => {
    const slow = await startOrigin(slowDir, { latencyMs: 300 });
    try {
      const startedMs = performance.now();
      const res = await send(slow, "/big.jpg", { method: "HEAD" });
      expect(res.status).toBe(200);
      expect(performance.now() - startedMs).toBeGreaterThanOrEqual(270);
    } finally {
      await slow.close();
    }
  });

  it("paces the body at bandwidthBytesPerSecond: 1 MiB at 4 Mbit/s takes about 2 s", async () => {
    const throttled = await startOrigin(slowDir, { bandwidthBytesPerSecond: 500_000 });
    try {
      const startedMs = performance.now();
      const res = await send(throttled, "/big.jpg");
      expect(performance.now() - startedMs).toBeGreaterThanOrEqual(1500);
      expect(res.body.equals(big)).toBe(true);
    } finally {
      await throttled.close();
    }
  });

  it("survives a client that hangs up mid-body, and close() ends responses still streaming", async () => {
    const throttled = await startOrigin(slowDir, { bandwidthBytesPerSecond: 200_000 });
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: throttled.port, path: "/big.jpg", agent: false }, (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.on("error", () => undefined); // destroyed on purpose
      req.on("response", (res) => res.on("error", () => undefined));
      req.on("close", resolve);
      req.end();
      setTimeout(() => reject(new Error("no first chunk")), 5000).unref();
    });
    const after = await send(throttled, "/big.jpg", { method: "HEAD" });
    expect(after.status).toBe(200);

    const inFlight = send(throttled, "/big.jpg").catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await throttled.close();
    expect(await inFlight).toBeInstanceOf(Error); // the connection was dropped, not left hanging
  });
});

describe("origin server: start", () => {
  it("rejects a directory that does not exist", async () => {
    await expect(startOrigin(join(tmpdir(), "imagika-no-such-dir-" + String(process.pid)))).rejects.toThrow();
  });

  it("reports a loopback URL when bound to every interface", async () => {
    const wide = await startOrigin(root, { host: "0.0.0.0" });
    try {
      expect(wide.url).toBe(`http://127.0.0.1:${wide.port}/`);
      const index = jsonOf(await send(wide, "/index.json")) as { images: unknown[] };
      expect(index.images.length).toBeGreaterThan(0);
    } finally {
      await wide.close();
    }
  });

  it("exposes the file on disk byte for byte", async () => {
    const res = await send(origin, "/sub/pic.png");
    expect(res.body.equals(await readFile(join(root, "sub", "pic.png")))).toBe(true);
  });
});
