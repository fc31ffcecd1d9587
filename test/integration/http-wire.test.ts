import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.ts";
import { makeJpeg, makePng } from "../helpers/images.ts";
import { startProxy } from "../helpers/proxy.ts";
import { WireClient, destroyWireClients, get } from "../helpers/wire-client.ts";
import type { WireResponse } from "../helpers/wire-client.ts";

/**
 * HTTP/1.1 on the wire (RFC 9112): framing, keep-alive, pipelining, closes and timeouts, checked as bytes on raw
 * sockets. Written against the node:http server as the regression net for an own engine on `net` + llhttp, so it
 * asserts only what a client can see: statuses, framing headers, body bytes and when the server closes.
 */
let dir: string;
let small: Buffer; // a.jpg
let other: Buffer; // b.jpg
let large: Buffer; // large.png, ~1.9 MB: many TCP segments
const apps: App[] = [];

function jsonOf(response: WireResponse): { error?: unknown; status?: unknown } {
  return JSON.parse(response.body.toString()) as { error?: unknown; status?: unknown };
}

async function proxyFor(overrides: Omit<Parameters<typeof startProxy>[0], "origin"> = {}): Promise<App> {
  const app = await startProxy({ origin: dir, ...overrides });
  apps.push(app);
  return app;
}

/** The process still answers, on a connection of its own. */
async function expectStillHealthy(app: App): Promise<void> {
  const client = await WireClient.open(app.port);
  client.write(get("/healthz", "Connection: close\r\n"));
  expect((await client.read()).status).toBe(200);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "imagika-wire-"));
  small = await makeJpeg(320, 200, 1);
  other = await makeJpeg(200, 150, 2);
  large = await makePng(900, 700, 3);
  await writeFile(join(dir, "a.jpg"), small);
  await writeFile(join(dir, "b.jpg"), other);
  await writeFile(join(dir, "large.png"), large);
});

afterEach(async () => {
  destroyWireClients();
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

describe("keep-alive and pipelining", () => {
  it("answers three sequential GETs on one HTTP/1.1 connection, each complete and dated", async () => {
    const app = await proxyFor();
    const client = await WireClient.open(app.port);
    for (const [path, bytes] of [
      ["/img/a.jpg", small],
      ["/img/b.jpg", other],
      ["/img/a.jpg", small],
    ] as const) {
      client.write(get(path));
      const res = await client.read();
      expect(res.status).toBe(200);
      expect(res.headers["date"]).toBeDefined();
      expect(res.headers["content-length"]).toBe(String(bytes.length));
      expect(res.headers["connection"]).not.toBe("close");
      expect(res.body.equals(bytes)).toBe(true);
    }
    expect(client.isEnded).toBe(false);
  });

  it("answers four pipelined requests in request order, even when the first is a slow miss", async () => {
    const app = await proxyFor();
    const client = await WireClient.open(app.port);
    client.write(get("/img/a.jpg") + get("/healthz") + get("/img/a.jpg", "", "HEAD") + get("/img/a.jpg"));

    const miss = await client.read();
    expect({ status: miss.status, cache: miss.headers["x-cache"] }).toEqual({ status: 200, cache: "MISS" });
    expect(miss.body.equals(small)).toBe(true);
    const health = await client.read();
    expect({ status: health.status, body: jsonOf(health) }).toEqual({ status: 200, body: { status: "ok" } });
    const head = await client.read("HEAD");
    expect({ status: head.status, length: head.headers["content-length"] }).toEqual({
      status: 200,
      length: String(small.length),
    });
    const again = await client.read();
    expect(again.status).toBe(200);
    expect(again.body.equals(small)).toBe(true); // a HEAD body leaking onto the wire would corrupt this one
    await sleep(50);
    expect(client.unread.length).toBe(0);
  });

  it("answers 100 sequential requests on one connection without closing it", async () => {
    const app = await proxyFor();
    const client = await WireClient.open(app.port);
    for (let i = 0; i < 100; i++) {
      client.write(get(i % 2 === 0 ? "/img/a.jpg" : "/healthz"));
      const res = await client.read();
      expect({ i, status: res.status }).toEqual({ i, status: 200 });
      if (i % 2 === 0) expect(res.body.length).toBe(small.length);
    }
    expect(client.isEnded).toBe(false);
  });

  it("keeps the connection after a 404 and after a 405 with Allow", async () => {
    const app = await proxyFor();
    const client = await WireClient.open(app.port);
    client.write(get("/api/no-such-endpoint")); // /api/: never the app shell, whether or not web/dist is built
    const notFound = await client.read();
    expect({ status: notFound.status, error: jsonOf(notFound).error }).toEqual({ status: 404, error: "NOT_FOUND" });
    client.write(get("/img/a.jpg", "", "POST")); // no Content-Length: an HTTP/1.1 request without a body
    const notAllowed = await client.read();
    expect({
      status: notAllowed.status,
      allow: notAllowed.headers["allow"],
      error: jsonOf(notAllowed).error,
    }).toEqual({ status: 405, allow: "GET, HEAD", error: "METHOD_NOT_ALLOWED" });
    client.write(get("/img/a.jpg"));
    const image = await client.read();
    expect(image.status).toBe(200);
    expect(image.body.equals(small)).toBe(true);
  });

  it("frames 304 and 206 responses so the next response on the connection is intact", async () => {
    const app = await proxyFor();
    const client = await WireClient.open(app.port);
    client.write(get("/img/a.jpg"));
    const first = await client.read();
    const etag = first.headers["etag"];
    expect(etag).toMatch(/^(W\/)?"[^"]+"$/);

    client.write(get("/img/a.jpg", `If-None-Match: ${etag}\r\n`));
    const notModified = await client.read();
    expect({ status: notModified.status, etag: notModified.headers["etag"] }).toEqual({ status: 304, etag });

    client.write(get("/img/a.jpg", "Range: bytes=0-9\r\n"));
    const partial = await client.read();
    expect({
      status: partial.status,
      range: partial.headers["content-range"],
      length: partial.headers["content-length"],
    }).toEqual({ status: 206, range: `bytes 0-9/${small.length}`, length: "10" });
    expect(partial.body.equals(small.subarray(0, 10))).toBe(true);

    client.write(get("/img/a.jpg"));
    const full = await client.read();
    expect(full.status).toBe(200);
    expect(full.body.equals(small)).toBe(true);
    await sleep(50);
    expect(client.unread.length).toBe(0);
  });
});

describe("closing", () => {
  it("closes after answering a request with Connection: close", async () => {
    const app = await proxyFor();
    const client = await WireClient.open(app.port);
    client.write(get("/img/a.jpg", "Connection: close\r\n"));
    const res = await client.read();
    expect({ status: res.status, connection: res.headers["connection"] }).toEqual({ status: 200, connection: "close" });
    expect(res.body.equals(small)).toBe(true);
    await client.closed();
    expect(client.unread.length).toBe(0);
  });

  it("closes after answering an HTTP/1.0 request without keep-alive", async () => {
    const app = await proxyFor();
    const client = await WireClient.open(app.port);
    client.write("GET /img/a.jpg HTTP/1.0\r\n\r\n");
    const res = await client.read();
    expect(res.status).toBe(200);
    expect(res.body.equals(small)).toBe(true);
    await client.closed();
  });

  it("keeps an HTTP/1.0 connection that asks for keep-alive", async () => {
    const app = await proxyFor();
    const client = await WireClient.open(app.port);
    for (let i = 0; i < 2; i++) {
      client.write("GET /img/a.jpg HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
      const res = await client.read();
      expect({ status: res.status, connection: res.headers["connection"]?.toLowerCase() }).toEqual({
        status: 200,
        connection: "keep-alive",
      });
      expect(res.body.equals(small)).toBe(true);
    }
    expect(client.isEnded).toBe(false);
  });

  it("closes a keep-alive connection left idle past keepAliveTimeoutMs", async () => {
    const app = await proxyFor({ keepAliveTimeoutMs: 300 });
    const client = await WireClient.open(app.port);
    client.write(get("/healthz"));
    expect((await client.read()).status).toBe(200);
    const idleMs = await client.closed(); // node:http 20 waits keepAliveTimeoutMs + 1 s (~1.3 s here)
    expect(idleMs).toBeGreaterThanOrEqual(200); // not at once: the connection was kept for a while
    expect(client.unread.length).toBe(0);
  });
});

describe("malformed and smuggling requests", () => {
  // Each is followed in the same write by a request that must never be answered: the server cannot know where it
  // starts, and answering it is how request smuggling gets through a front proxy that framed the bytes differently.
  it.each([
    [
      "Transfer-Encoding: chunked with Content-Length",
      get("/healthz", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n",
    ],
    ["two different Content-Length headers", get("/healthz", "Content-Length: 0\r\nContent-Length: 5\r\n")],
    ["a Content-Length with a letter", get("/healthz", "Content-Length: 5a\r\n")],
    ["a Content-Length with a sign", get("/healthz", "Content-Length: +5\r\n")],
    ["a negative Content-Length", get("/healthz", "Content-Length: -1\r\n")],
    ["whitespace between a header name and its colon", "GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n"],
    ["an unknown method", get("/img/a.jpg", "", "FOO")],
    ["a raw \\x01 in a header value", get("/healthz", "X-Note: a\x01b\r\n")],
    ["a NUL in a header value", get("/healthz", "X-Note: a\x00b\r\n")],
    ["an obsolete folded header line", get("/healthz", "X-Note: a\r\n b\r\n")],
    [
      "a Transfer-Encoding that does not end in chunked",
      get("/healthz", "Transfer-Encoding: chunked, identity\r\n") + "0\r\n\r\n",
    ],
    ["bare LF line endings", "GET /healthz HTTP/1.1\nHost: x\n\n"],
    [
      "Transfer-Encoding: chunked on a GET of an image",
      get("/img/a.jpg", "Transfer-Encoding: chunked\r\n") + "0\r\n\r\n",
    ],
  ])("answers %s with 400, closes, and ignores the request pipelined after it", async (_name, request) => {
    const app = await proxyFor();
    const client = await WireClient.open(app.port);
    client.write(request + get("/healthz"));
    const res = await client.read();
    expect(res.status).toBe(400);
    expect(typeof jsonOf(res).error).toBe("string");
    await client.closed();
    expect(client.unread.toString("latin1")).toBe("");
    await expectStillHealthy(app);
  });

  it.each(["xchunked", "gzip", "chunked\r\nTransfer-Encoding: identity"])(
    "answers Transfer-Encoding: %s (the final coding is not chunked) with 400 BAD_REQUEST before closing",
    async (codings) => {
      const app = await proxyFor();
      const client = await WireClient.open(app.port);
      client.write(get("/healthz", `Transfer-Encoding: ${codings}\r\n`) + "0\r\n\r\n" + get("/healthz"));
      const res = await client.read();
      expect(res.status).toBe(400);
      expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
      expect(jsonOf(res).error).toBe("BAD_REQUEST");
      await client.closed();
      expect(client.unread.toString("latin1")).toBe("");
      await expectStillHealthy(app);
    },
  );

  it("answers an HTTP/1.1 request without Host with 400 and closes", async () => {
    const app = await proxyFor();
    const client = await WireClient.open(app.port);
    client.write("GET /healthz HTTP/1.1\r\n\r\n" + get("/healthz"));
    expect((await client.read()).status).toBe(400);
    await client.closed();
    expect(client.unread.toString("latin1")).toBe("");
    await expectStillHealthy(app);
  });

  it("answers 300 short headers (under the 16 KB head limit) and refuses a head of many headers past it with 431", async () => {
    const app = await proxyFor();
    const many = (count: number): string =>
      Array.from({ length: count }, (_, i) => `X-H${String(i).padStart(4, "0")}: v\r\n`).join("");
    const client = await WireClient.open(app.port);
    client.write(get("/img/a.jpg", many(300)));
    const accepted = await client.read();
    expect(accepted.status).toBe(200);
    expect(accepted.body.equals(small)).toBe(true);

    const refused = await WireClient.open(app.port);
    // 2500 x 12 B = 30 KB on the wire; 20 KB even counting only names and values, as node:http does.
    refused.write(get("/img/a.jpg", many(2500)));
    const res = await refused.read();
    expect(res.status).toBe(431);
    expect(typeof jsonOf(res).error).toBe("string");
    await refused.closed();
    await expectStillHealthy(app);
  });
});

describe("slow and vanishing clients", () => {
  it("closes a connection that drips its request head one byte every 100 ms past headersTimeoutMs", async () => {
    const app = await proxyFor({ headersTimeoutMs: 500 });
    const client = await WireClient.open(app.port);
    const head = Buffer.from(get("/img/a.jpg", `X-Drip: ${"d".repeat(200)}`)); // 20 s of drip: never completes here
    let sent = 0;
    const drip = setInterval(() => {
      if (client.isEnded || sent >= head.length) return clearInterval(drip);
      client.write(head.subarray(sent, ++sent));
    }, 100);
    try {
      await client.closed(); // the 3 s bound: a dripping client must not keep its slot
    } finally {
      clearInterval(drip);
    }
    expect(sent).toBeLessThan(head.length);
    if (client.unread.length > 0) expect((await client.read()).status).toBe(408);
    await expectStillHealthy(app);
  });

  it("stays healthy after a client sends half a request line and then half-closes or vanishes", async () => {
    const app = await proxyFor();
    const halfClosed = await WireClient.open(app.port);
    halfClosed.write("GET /img/a.j");
    halfClosed.socket.end();
    const destroyed = await WireClient.open(app.port);
    destroyed.write("GET /img/a.j");
    await sleep(50);
    destroyed.destroy();
    await halfClosed.closed(); // nothing more can come: the server lets the connection go
    if (halfClosed.unread.length > 0) expect((await halfClosed.read()).status).toBe(400);
    await expectStillHealthy(app);
  });

  it("stays healthy when a client drops a large response after its first chunk, and serves it whole next", async () => {
    const app = await proxyFor();
    const dropper = await WireClient.open(app.port);
    dropper.write(get("/img/large.png"));
    await dropper.received(1);
    expect(dropper.unread.length).toBeLessThan(large.length);
    dropper.destroy();

    await expectStillHealthy(app);
    const next = await WireClient.open(app.port);
    next.write(get("/img/large.png"));
    const res = await next.read();
    expect(res.status).toBe(200);
    expect(res.body.equals(large)).toBe(true);
  });
});
