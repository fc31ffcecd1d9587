import { createServer, request as httpRequest } from "node:http";
import type { Server } from "node:http";
import { connect } from "node:net";
import type { AddressInfo, Socket } from "node:net";
import { mkdtemp, mkdir, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.ts";
import { signImageUrl } from "../../src/http/signature.ts";
import { imageFacts, makeJpeg } from "../helpers/images.ts";
import { startProxy } from "../helpers/proxy.ts";
import { bytesRoute, startTestOrigin } from "../helpers/test-origin.ts";
import type { TestOrigin } from "../helpers/test-origin.ts";

/**
 * The hostile-input suite: one test per attack. Each asserts the status, that the process still answers, that
 * memory stayed bounded and that nothing wrong was cached. Every target is on loopback; the canary is a listener
 * that must never see a connection from an SSRF attempt.
 */
let origin: TestOrigin;
let canary: Server;
let canaryPort: number;
let canaryConnections = 0;
let jpeg: Buffer;
const apps: App[] = [];
const RSS_BOUND_BYTES = 300 * 1024 * 1024;

async function proxyFor(
  overrides: Omit<Parameters<typeof startProxy>[0], "origin"> & { origin?: string } = {},
): Promise<App> {
  const app = await startProxy({ origin: origin.url, ...overrides });
  apps.push(app);
  return app;
}

function raw(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, method: "GET", headers }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** The invariants every hostile case must leave intact. */
async function expectStillHealthy(app: App, maxEntries = 0): Promise<void> {
  expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
  expect(process.memoryUsage().rss).toBeLessThan(RSS_BOUND_BYTES + baselineRss);
  expect(app.variants.stats().entries + app.originals.stats().entries).toBeLessThanOrEqual(maxEntries);
}

async function expectRefusal(app: App, path: string, status: number | number[], code?: string | RegExp): Promise<void> {
  const res = await raw(app.port, path);
  const statuses = Array.isArray(status) ? status : [status];
  expect({ path, status: statuses.includes(res.status) }).toEqual({ path, status: true });
  expect(res.headers["cache-control"]).toBeUndefined();
  const body = JSON.parse(res.body) as { error: string; message: string };
  if (code !== undefined) expect(body.error).toMatch(code);
  expect(typeof body.message).toBe("string");
}

let baselineRss = 0;

/** A JPEG whose SOF header claims width x height (the scan data is the small original's). */
function jpegClaiming(source: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(source);
  for (let i = 2; i < out.length - 9; i++) {
    if (out[i] === 0xff && out[i + 1] !== undefined && [0xc0, 0xc1, 0xc2].includes(out[i + 1]!)) {
      out.writeUInt16BE(height, i + 5);
      out.writeUInt16BE(width, i + 7);
      return out;
    }
  }
  throw new Error("no SOF marker");
}

beforeAll(async () => {
  baselineRss = process.memoryUsage().rss;
  jpeg = await makeJpeg(400, 300, 21);
  canary = createServer((_req, res) => res.end("canary"));
  canary.on("connection", () => canaryConnections++);
  await new Promise<void>((resolve) => canary.listen(0, "127.0.0.1", resolve));
  canaryPort = (canary.address() as AddressInfo).port;

  const frames = 10_000;
  const gifPixels = Buffer.alloc(8 * 8 * frames * 3);
  for (let i = 0; i < gifPixels.length; i += 7) gifPixels[i] = i & 0xff;
  const gif = await sharp(gifPixels, { raw: { width: 8, height: 8 * frames, channels: 3, pageHeight: 8 } })
    .gif()
    .toBuffer();
  // 8000 x 8000 zeros: 64 megapixels in a few hundred kilobytes.
  const zeroPng = await sharp(Buffer.alloc(8000 * 8000), { raw: { width: 8000, height: 8000, channels: 1 } })
    .png({ compressionLevel: 9 })
    .toBuffer();

  origin = await startTestOrigin({
    "/photo.jpg": bytesRoute(jpeg, "image/jpeg"),
    "/huge-header.jpg": bytesRoute(jpegClaiming(jpeg, 60_000, 60_000), "image/jpeg"),
    "/zeros.png": bytesRoute(zeroPng, "image/png"),
    "/frames.gif": bytesRoute(gif, "image/gif"),
    "/truncated.jpg": bytesRoute(jpeg.subarray(0, 600), "image/jpeg"),
    "/script.svg": bytesRoute(
      Buffer.from(
        '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>',
      ),
      "image/svg+xml",
    ),
    "/never.jpg": () => {},
    "/drip.jpg": (_req, res) => {
      res.writeHead(200, { "content-type": "image/jpeg", "content-length": jpeg.length });
      let sent = 0;
      const timer = setInterval(() => {
        if (res.destroyed || sent >= jpeg.length) return clearInterval(timer);
        res.write(jpeg.subarray(sent, sent + 1));
        sent++;
      }, 1000);
      res.on("close", () => clearInterval(timer));
    },
    "/reset.jpg": (req) => req.socket.destroy(),
    "/error.jpg": (_req, res) => {
      res.writeHead(500);
      res.end("internal");
    },
    "/short.jpg": (_req, res) => {
      // Declares more than it sends, then hangs up.
      res.writeHead(200, { "content-type": "image/jpeg", "content-length": jpeg.length * 2 });
      res.write(jpeg);
      setTimeout(() => res.socket?.destroy(), 50);
    },
    "/endless.jpg": (_req, res) => {
      res.writeHead(200, { "content-type": "image/jpeg" }); // chunked, never ends
      const chunk = Buffer.alloc(64 * 1024, 0xab);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once("drain", pump);
      };
      pump();
    },
    "/to-canary.jpg": (_req, res) => {
      res.writeHead(302, { location: `http://127.0.0.1:${canaryPort}/x.jpg` });
      res.end();
    },
    "/to-localhost.jpg": (_req, res) => {
      res.writeHead(302, { location: `http://localhost:${canaryPort}/x.jpg` });
      res.end();
    },
    "/to-metadata.jpg": (_req, res) => {
      res.writeHead(301, { location: "http://169.254.169.254/latest/meta-data/" });
      res.end();
    },
    "/to-file.jpg": (_req, res) => {
      res.writeHead(302, { location: "file:///etc/passwd" });
      res.end();
    },
    "/loop.jpg": (_req, res) => {
      res.writeHead(302, { location: "/loop.jpg" });
      res.end();
    },
    "/moved.jpg": (_req, res) => {
      res.writeHead(301, { location: "/photo.jpg" });
      res.end();
    },
    "/echo-credentials.jpg": (req, res) => {
      // A private origin response would depend on these; the proxy must never forward them.
      const leaked = req.headers.cookie !== undefined || req.headers.authorization !== undefined;
      res.writeHead(leaked ? 500 : 200, { "content-type": "image/jpeg" });
      res.end(leaked ? "credentials leaked" : jpeg);
    },
  });
}, 60_000);

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await origin?.close();
  if (canary) await new Promise<void>((resolve) => canary.close(() => resolve()));
});

describe("path traversal", () => {
  it.each([
    ["/img/../../etc/passwd"],
    ["/img/%2e%2e/%2e%2e/etc/passwd"],
    ["/img/sub/..%2f..%2fetc%2fpasswd"],
    ["/img/%252e%252e%252fetc%252fpasswd"],
    ["/img/a.jpg%00.png"],
    ["/img//etc/passwd"],
    ["/img/%2Fetc%2Fpasswd"],
    ["/img/..%5c..%5cwindows%5cwin.ini"],
  ])("refuses %s with 400", async (path) => {
    const app = await proxyFor();
    await expectRefusal(app, path, 400, "INVALID_PATH");
    await expectStillHealthy(app);
  });

  it("refuses a symlink that leads out of a directory origin with 403", async () => {
    const root = await mkdtemp(join(tmpdir(), "imagika-sec-root-"));
    const outside = await mkdtemp(join(tmpdir(), "imagika-sec-out-"));
    await writeFile(join(outside, "secret.jpg"), jpeg);
    await mkdir(join(root, "ok"));
    await symlink(join(outside, "secret.jpg"), join(root, "ok", "link.jpg"));
    const app = await proxyFor({ origin: root });
    await expectRefusal(app, "/img/ok/link.jpg", 403, "ORIGIN_FORBIDDEN");
    await expectStillHealthy(app);
  });
});

describe("SSRF", () => {
  const loopbackSpellings = [
    "http://127.0.0.1:PORT/x.jpg",
    "http://localhost:PORT/x.jpg", // a DNS name resolving to loopback: blocked at connect time
    "http://2130706433:PORT/x.jpg", // decimal
    "http://0x7f.0.0.1:PORT/x.jpg", // hex
    "http://0177.0.0.1:PORT/x.jpg", // octal
    "http://127.1:PORT/x.jpg", // short form
    "http://0.0.0.0:PORT/x.jpg", // unspecified reaches loopback on Linux
    "http://[::1]:PORT/x.jpg",
    "http://[::ffff:127.0.0.1]:PORT/x.jpg", // IPv4-mapped
    "http://[::127.0.0.1]:PORT/x.jpg", // IPv4-compatible
  ];

  it.each(loopbackSpellings)("remote mode refuses %s and the canary sees no connection", async (template) => {
    const app = await proxyFor({
      allowedSources: [
        "127.0.0.1",
        "localhost",
        "2130706433",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "127.1",
        "0.0.0.0",
        "[::1]",
        "[::ffff:7f00:1]",
        "[::7f00:1]",
      ],
    });
    const before = canaryConnections;
    const target = template.replace("PORT", String(canaryPort));
    await expectRefusal(app, `/img?url=${encodeURIComponent(target)}&w=10`, [403, 404], /FORBIDDEN|NOT_FOUND/);
    expect(canaryConnections).toBe(before);
    await expectStillHealthy(app);
  });

  it("is off unless --allowed-sources is set, and refuses hosts outside the list", async () => {
    const off = await proxyFor();
    await expectRefusal(off, `/img?url=${encodeURIComponent("http://example.com/a.jpg")}`, 404, "NOT_FOUND");
    const on = await proxyFor({ allowedSources: ["images.example.com"] });
    await expectRefusal(on, `/img?url=${encodeURIComponent("http://evil.example.net/a.jpg")}`, 403, "FORBIDDEN");
    await expectRefusal(
      on,
      `/img?url=${encodeURIComponent("http://user:pw@images.example.com/a.jpg")}`,
      403,
      "FORBIDDEN",
    );
    await expectRefusal(on, `/img?url=${encodeURIComponent("file:///etc/passwd")}`, 403, "FORBIDDEN");
    await expectStillHealthy(on);
  });

  it.each(["/img/to-canary.jpg", "/img/to-localhost.jpg", "/img/to-metadata.jpg", "/img/to-file.jpg"])(
    "refuses a redirect from the trusted origin to a blocked target (%s)",
    async (path) => {
      const app = await proxyFor();
      const before = canaryConnections;
      await expectRefusal(app, path, 403, "FORBIDDEN");
      expect(canaryConnections).toBe(before);
      await expectStillHealthy(app);
    },
  );

  it("follows redirects within the origin, at most --max-redirects times", async () => {
    const app = await proxyFor({ maxRedirects: 3 });
    const moved = await fetch(`${app.url}/img/moved.jpg`);
    expect(moved.status).toBe(200);
    expect((await imageFacts(Buffer.from(await moved.arrayBuffer()))).width).toBe(400);
    await expectRefusal(app, "/img/loop.jpg", 502, "ORIGIN_FAILED");
    await expectStillHealthy(app, 1);
  });

  it("never forwards the client's Cookie or Authorization to the origin", async () => {
    const app = await proxyFor();
    const res = await fetch(`${app.url}/img/echo-credentials.jpg`, {
      headers: { cookie: "session=secret", authorization: "Bearer user-token" },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  });
});

describe("hostile images", () => {
  it("refuses a JPEG header declaring 60,000 x 60,000 pixels before decoding", async () => {
    const app = await proxyFor();
    await expectRefusal(app, "/img/huge-header.jpg?w=100", 413, "SOURCE_TOO_LARGE");
    await expectStillHealthy(app, 1); // only the (small) original is cached
  });

  it("refuses a deeply compressed 64-megapixel PNG by its pixel count", async () => {
    const app = await proxyFor();
    await expectRefusal(app, "/img/zeros.png?w=100", 413, "SOURCE_TOO_LARGE");
    await expectStillHealthy(app, 1);
  });

  it("processes only the first frame of a GIF with 10,000 frames", async () => {
    const app = await proxyFor();
    const res = await fetch(`${app.url}/img/frames.gif?w=8&f=png`);
    expect(res.status).toBe(200);
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    expect({ format: meta.format, width: meta.width, height: meta.height, pages: meta.pages ?? 1 }).toEqual({
      format: "png",
      width: 8,
      height: 8,
      pages: 1,
    });
    await expectStillHealthy(app, 2);
  });

  it("answers a truncated JPEG with 422 and keeps serving", async () => {
    const app = await proxyFor();
    await expectRefusal(app, "/img/truncated.jpg?w=50&f=webp", [415, 422], /UNSUPPORTED_IMAGE|NOT_AN_IMAGE/);
    await expectStillHealthy(app, 1);
  });

  it("refuses SVG with script by default and never serves it as image/svg+xml", async () => {
    const app = await proxyFor();
    await expectRefusal(app, "/img/script.svg", 415, "NOT_AN_IMAGE");
    await expectRefusal(app, "/img/script.svg?w=100", 415, "NOT_AN_IMAGE");
    await expectStillHealthy(app);
  });
});

describe("origin faults", () => {
  it.each([
    ["/img/never.jpg", 504, "ORIGIN_TIMEOUT"],
    ["/img/drip.jpg", 504, "ORIGIN_TIMEOUT"],
    ["/img/reset.jpg", 502, "ORIGIN_FAILED"],
    ["/img/error.jpg", 502, "ORIGIN_FAILED"],
    ["/img/short.jpg", 502, "ORIGIN_FAILED"],
    ["/img/endless.jpg", 413, "SOURCE_TOO_LARGE"],
  ] as const)("%s -> %i %s", async (path, status, code) => {
    const app = await proxyFor({
      originHeadersTimeoutMs: 500,
      originTotalTimeoutMs: 1500,
      maxSourceBytes: 2 * 1024 * 1024,
    });
    await expectRefusal(app, path, status, code);
    await expectStillHealthy(app);
  });
});

describe("parameter abuse", () => {
  it.each([
    "w=99999999999999",
    "w=-1",
    "w=NaN",
    "w=1e3",
    "w=0x10",
    "w=12.5",
    "w=",
    "q=0",
    "dpr=Infinity",
    "w=1&w=2",
    "fit=__proto__",
    "constructor=1",
    "f=svg",
  ])("answers %s with 400 naming the option", async (query) => {
    const app = await proxyFor();
    await expectRefusal(app, `/img/photo.jpg?${query}`, 400, "INVALID_OPTIONS");
    await expectStillHealthy(app);
  });

  it("maps thousands of option permutations to one cache entry", async () => {
    const app = await proxyFor();
    const pairs = ["w=64", "h=48", "q=60", "f=webp", "fit=cover", "dpr=1"];
    const permutations: string[][] = [[]];
    for (const pair of pairs) {
      const next: string[][] = [];
      for (const perm of permutations)
        for (let i = 0; i <= perm.length; i++) next.push([...perm.slice(0, i), pair, ...perm.slice(i)]);
      permutations.splice(0, permutations.length, ...next);
    }
    expect(permutations.length).toBe(720);
    for (let i = 0; i < permutations.length; i += 24) {
      await Promise.all(
        permutations
          .slice(i, i + 24)
          .map(async (perm) => (await fetch(`${app.url}/img/photo.jpg?${perm.join("&")}`)).arrayBuffer()),
      );
    }
    expect(app.variants.stats().entries).toBe(1);
    expect(app.transformer.stats().transforms).toBe(1);
    await expectStillHealthy(app, 2);
  });
});

describe("signed URLs", () => {
  const KEY = "current-key";
  const OLD = "previous-key";

  it("serves valid signatures under any configured key (rotation)", async () => {
    const app = await proxyFor({ signingKeys: [KEY, OLD] });
    for (const key of [KEY, OLD]) {
      const res = await fetch(`${app.url}${signImageUrl("/img/photo.jpg?w=120&f=webp", key)}`);
      expect(res.status).toBe(200);
      expect((await imageFacts(Buffer.from(await res.arrayBuffer()))).width).toBe(120);
    }
    const future = signImageUrl("/img/photo.jpg?w=120", KEY, Math.floor(Date.now() / 1000) + 60);
    expect((await fetch(`${app.url}${future}`)).status).toBe(200);
  });

  it.each([
    ["unsigned", (): string => "/img/photo.jpg?w=100"],
    ["tampered option", (): string => signImageUrl("/img/photo.jpg?w=100", KEY).replace("w=100", "w=101")],
    ["tampered path", (): string => signImageUrl("/img/photo.jpg?w=100", KEY).replace("photo", "other")],
    ["truncated", (): string => signImageUrl("/img/photo.jpg?w=100", KEY).slice(0, -4)],
    ["wrong key", (): string => signImageUrl("/img/photo.jpg?w=100", "attacker-key")],
    ["expired", (): string => signImageUrl("/img/photo.jpg?w=100", KEY, Math.floor(Date.now() / 1000) - 1)],
    [
      "expiry removed",
      (): string =>
        signImageUrl("/img/photo.jpg?w=100", KEY, Math.floor(Date.now() / 1000) - 1).replace(/exp=\d+&/, ""),
    ],
    ["two signatures", (): string => `${signImageUrl("/img/photo.jpg?w=100", KEY)}&s=abc`],
  ])("refuses %s with 403", async (_name, url) => {
    const app = await proxyFor({ signingKeys: [KEY] });
    await expectRefusal(app, url(), 403, "BAD_SIGNATURE");
    await expectStillHealthy(app);
  });
});

describe("hostile clients", () => {
  it("refuses a GET with a body", async () => {
    const app = await proxyFor();
    // fetch() will not send a GET body; a raw socket does.
    const reply = await rawSocket(app.port, "GET /img/photo.jpg HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect(reply).toContain("BODY_NOT_ALLOWED");
    await expectStillHealthy(app);
  });

  it("closes a slowloris connection that never finishes its headers", async () => {
    const app = await proxyFor({ headersTimeoutMs: 500 });
    const started = performance.now();
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect(app.port, "127.0.0.1", () => socket.write("GET /img/photo.jpg HTTP/1.1\r\nHost: x\r\n"));
      let data = "";
      socket.on("data", (chunk: Buffer) => (data += chunk.toString()));
      socket.on("close", () => resolve(data));
      socket.on("error", () => resolve(data));
      setTimeout(() => socket.destroy(), 10_000);
    });
    expect(performance.now() - started).toBeLessThan(9_000); // closed by the server, not by our 10 s guard
    expect(outcome === "" || outcome.startsWith("HTTP/1.1 408")).toBe(true);
    await expectStillHealthy(app);
  });

  it("caps concurrent connections per client", async () => {
    const app = await proxyFor({ maxConnectionsPerClient: 5 });
    const sockets: Socket[] = [];
    const closedEarly: boolean[] = [];
    for (let i = 0; i < 8; i++) {
      const socket = connect(app.port, "127.0.0.1");
      sockets.push(socket);
      closedEarly.push(false);
      socket.on("close", () => (closedEarly[i] = true));
      socket.on("error", () => {});
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(closedEarly.filter(Boolean).length).toBe(3);
    expect(app.stats.rejectedConnections).toBe(3);
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expectStillHealthy(app);
  });

  it("refuses oversized URLs with 414 and header blocks with 431", async () => {
    const app = await proxyFor();
    expect((await raw(app.port, `/img/${"x".repeat(9000)}.jpg`)).status).toBe(414);
    const reply = await rawSocket(
      app.port,
      `GET /img/photo.jpg HTTP/1.1\r\nHost: x\r\nX-Pad: ${"p".repeat(20_000)}\r\n\r\n`,
    );
    expect(reply).toMatch(/^HTTP\/1\.1 431/);
    await expectStillHealthy(app);
    const stats = (await (await fetch(`${app.url}/api/stats`)).json()) as { refusedRequests: number };
    expect(stats.refusedRequests).toBe(2); // counted for operators (and in imagika_refused_requests_total)
    expect(await (await fetch(`${app.url}/metrics`)).text()).toMatch(/^imagika_refused_requests_total 2$/m);
  });

  it("sends nosniff, a sandboxing CSP and CORP on every image, and keeps Accept, Cookie and Host out of cache keys", async () => {
    const app = await proxyFor({ crossOriginResourcePolicy: "same-site" });
    const first = await fetch(`${app.url}/img/photo.jpg?w=50&f=webp`, {
      headers: { cookie: "a=1", accept: "image/webp" },
    });
    expect(first.headers.get("x-content-type-options")).toBe("nosniff");
    expect(first.headers.get("content-security-policy")).toBe("default-src 'none'; sandbox");
    expect(first.headers.get("cross-origin-resource-policy")).toBe("same-site");
    await first.arrayBuffer();
    const second = await fetch(`${app.url}/img/photo.jpg?w=50&f=webp`, {
      headers: { cookie: "b=2", accept: "text/html", "x-forwarded-host": "evil" },
    });
    expect(second.headers.get("x-cache")).toBe("HIT");
    await second.arrayBuffer();
    for (const key of [...app.variants.keys(), ...app.originals.keys()])
      expect(key).not.toMatch(/cookie|a=1|b=2|evil|text\/html/i);
  });
});

function rawSocket(port: number, payload: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(payload));
    let data = "";
    socket.on("data", (chunk: Buffer) => {
      data += chunk.toString();
      if (data.includes("\r\n\r\n")) setTimeout(() => socket.destroy(), 50);
    });
    socket.on("close", () => resolve(data));
    socket.on("error", () => resolve(data));
  });
}
