import { createServer } from "node:http";
import type { Server } from "node:http";
import { createServer as createNetServer } from "node:net";
import type { AddressInfo, Server as NetServer, Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MAX_HEAD_BYTES, OriginClient } from "../../src/fetcher/origin-client.ts";
import type { OriginClientOptions } from "../../src/fetcher/origin-client.ts";
import type { App } from "../../src/app.ts";
import { BIG, expectCode, fetchRoutes, sha256 as sha } from "../helpers/fetch-routes.ts";
import { imageFacts, makeJpeg } from "../helpers/images.ts";
import { startProxy } from "../helpers/proxy.ts";
import type { Route } from "../helpers/test-origin.ts";

// The plain-HTTP origin client against real servers on 127.0.0.1: node:http for well-formed answers, raw TCP servers
// for the framings and faults node:http would not produce.

const HEADERS = "accept: image/*\r\n";
const NO_SIGNAL = new AbortController().signal;

const routes: Record<string, Route> = {
  ...fetchRoutes(),
  "/empty.jpg": (_req, res) => {
    res.writeHead(200, { "content-length": 0 });
    res.end();
  },
  "/early-hints.jpg": (_req, res) => {
    res.writeEarlyHints({ link: "</x.css>; rel=preload" });
    res.writeHead(200, { "content-length": 5 });
    res.end("hello");
  },
  "/slow-head.jpg": () => {
    // never answers
  },
  "/slow-big.jpg": (_req, res) => {
    res.writeHead(200, { "content-length": BIG.byteLength });
    res.write(BIG.subarray(0, 1_000_000));
    setTimeout(() => res.end(BIG.subarray(1_000_000)), 300);
  },
};

let server: Server;
let port = 0;
let connections = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    const route = routes[req.url ?? ""];
    if (route) route(req, res);
    else {
      res.writeHead(500);
      res.end();
    }
  });
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const clients: OriginClient[] = [];
const rawServers: NetServer[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const raw of rawServers.splice(0)) raw.close();
});

function clientFor(targetPort: number, options: Partial<OriginClientOptions> = {}): OriginClient {
  const client = new OriginClient({
    host: "127.0.0.1",
    port: targetPort,
    hostHeader: `127.0.0.1:${targetPort}`,
    maxConnections: 4,
    connectTimeoutMs: 2000,
    headersTimeoutMs: 2000,
    bodyTimeoutMs: 2000,
    keepAliveMs: 30_000,
    ...options,
  });
  clients.push(client);
  return client;
}

/** A raw TCP origin: `answer` writes whatever it likes once a request head has arrived. */
async function rawOrigin(answer: (socket: Socket, requestNumber: number, requestHead: string) => void): Promise<{
  server: NetServer;
  port: number;
  connectionCount: () => number;
}> {
  let count = 0;
  let requestNumber = 0;
  const raw = createNetServer((socket) => {
    count++;
    let received = "";
    socket.on("data", (data) => {
      received += data.toString("latin1");
      for (let end = received.indexOf("\r\n\r\n"); end >= 0; end = received.indexOf("\r\n\r\n")) {
        const head = received.slice(0, end);
        received = received.slice(end + 4);
        answer(socket, ++requestNumber, head);
      }
    });
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => raw.listen(0, "127.0.0.1", resolve));
  rawServers.push(raw); // closed after each test
  return { server: raw, port: (raw.address() as AddressInfo).port, connectionCount: () => count };
}

describe("OriginClient", () => {
  it("reads a Content-Length body byte for byte and reuses the connection", async () => {
    const client = clientFor(port);
    const before = connections;
    for (let i = 0; i < 3; i++) {
      const response = await client.get("/big.jpg", HEADERS, 10e6, NO_SIGNAL);
      expect(response.statusCode).toBe(200);
      expect(sha(response.body!)).toBe(sha(BIG));
    }
    expect(connections - before).toBe(1);
  });

  it("reads a chunked body, and an empty one", async () => {
    const client = clientFor(port);
    const chunked = await client.get("/chunked.jpg", HEADERS, 10e6, NO_SIGNAL);
    expect(sha(chunked.body!)).toBe(sha(BIG));
    const empty = await client.get("/empty.jpg", HEADERS, 10e6, NO_SIGNAL);
    expect(empty.body!.byteLength).toBe(0);
  });

  it("skips an interim 103 response", async () => {
    const response = await clientFor(port).get("/early-hints.jpg", HEADERS, 10e6, NO_SIGNAL);
    expect(response.body!.toString()).toBe("hello");
  });

  it("reports other statuses without a body, with a redirect's Location", async () => {
    const client = clientFor(port);
    expect(await client.get("/missing.jpg", HEADERS, 10e6, NO_SIGNAL)).toMatchObject({
      statusCode: 404,
      location: undefined,
      body: undefined,
    });
    expect((await client.get("/moved.jpg", HEADERS, 10e6, NO_SIGNAL)).location).toBe("/big.jpg");
    // the connection of an unread error body is dropped, and the next request still works
    expect(sha((await client.get("/big.jpg", HEADERS, 10e6, NO_SIGNAL)).body!)).toBe(sha(BIG));
  });

  it("refuses bodies over the byte cap, declared or counted, and recovers", async () => {
    const client = clientFor(port);
    await expectCode(client.get("/big.jpg", HEADERS, 1_000_000, NO_SIGNAL), "SOURCE_TOO_LARGE");
    await expectCode(client.get("/chunked.jpg", HEADERS, 1_000_000, NO_SIGNAL), "SOURCE_TOO_LARGE");
    expect(sha((await client.get("/big.jpg", HEADERS, 10e6, NO_SIGNAL)).body!)).toBe(sha(BIG));
  });

  it("times out a silent origin and a stalled body (504 codes)", async () => {
    const client = clientFor(port, { headersTimeoutMs: 150, bodyTimeoutMs: 150 });
    await expectCode(client.get("/slow-head.jpg", HEADERS, 10e6, NO_SIGNAL), "ORIGIN_TIMEOUT");
    await expectCode(client.get("/stall-body.jpg", HEADERS, 10e6, NO_SIGNAL), "ORIGIN_TIMEOUT");
  });

  it("waits out a slow body that keeps moving", async () => {
    const client = clientFor(port, { bodyTimeoutMs: 1000 });
    expect(sha((await client.get("/slow-big.jpg", HEADERS, 10e6, NO_SIGNAL)).body!)).toBe(sha(BIG));
  });

  it("fails a body cut short of its Content-Length", async () => {
    await expectCode(clientFor(port).get("/cut-body.jpg", HEADERS, 10e6, NO_SIGNAL), "ORIGIN_FAILED");
  });

  it("fails on a refused connection", async () => {
    const closed = createNetServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expectCode(clientFor(closedPort).get("/big.jpg", HEADERS, 10e6, NO_SIGNAL), "ORIGIN_FAILED");
  });

  it("aborts with the signal's reason and stays usable", async () => {
    const client = clientFor(port);
    const controller = new AbortController();
    const pending = client.get("/slow-head.jpg", HEADERS, 10e6, controller.signal);
    setTimeout(() => controller.abort(new Error("gave up")), 50);
    await expect(pending).rejects.toThrow("gave up");
    expect(sha((await client.get("/big.jpg", HEADERS, 10e6, NO_SIGNAL)).body!)).toBe(sha(BIG));
  });

  it("keeps at most maxConnections open under concurrency, and serves every caller", async () => {
    const client = clientFor(port, { maxConnections: 2 });
    const before = connections;
    const bodies = await Promise.all(
      Array.from({ length: 10 }, () => client.get("/big.jpg", HEADERS, 10e6, NO_SIGNAL)),
    );
    for (const b of bodies) expect(sha(b.body!)).toBe(sha(BIG));
    expect(connections - before).toBeLessThanOrEqual(2);
    expect(client.connectionCount).toBeLessThanOrEqual(2);
  });

  it("retries once on a new connection when the origin closed an idle one", async () => {
    // Requests 1 and 3 are answered; request 2 (the second on the first connection) finds it closed without a word.
    const origin = await rawOrigin((socket, n) => {
      if (n % 2 === 1) socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
      else socket.destroy();
    });
    const client = clientFor(origin.port);
    expect((await client.get("/a", HEADERS, 100, NO_SIGNAL)).body!.toString()).toBe("ok");
    expect((await client.get("/b", HEADERS, 100, NO_SIGNAL)).body!.toString()).toBe("ok");
    expect(origin.connectionCount()).toBe(2);
  });

  it("reads a close-delimited body and never reuses its connection", async () => {
    const origin = await rawOrigin((socket) => {
      socket.end("HTTP/1.0 200 OK\r\ncontent-type: image/jpeg\r\n\r\nall of it");
    });
    const client = clientFor(origin.port);
    expect((await client.get("/a", HEADERS, 100, NO_SIGNAL)).body!.toString()).toBe("all of it");
    expect((await client.get("/a", HEADERS, 100, NO_SIGNAL)).body!.toString()).toBe("all of it");
    expect(origin.connectionCount()).toBe(2);
  });

  it("does not reuse a connection that sent bytes after a chunked body", async () => {
    const origin = await rawOrigin((socket) =>
      socket.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"),
    );
    const client = clientFor(origin.port);
    expect((await client.get("/a", HEADERS, 100, NO_SIGNAL)).body!.toString()).toBe("ok");
    expect((await client.get("/a", HEADERS, 100, NO_SIGNAL)).body!.toString()).toBe("ok");
    expect(origin.connectionCount()).toBe(2);
  });

  it("never hands bytes after a Content-Length body to the request waiting for the connection", async () => {
    // The head first; then, in one write, the body and a whole second response. The body's last byte fills the body
    // buffer exactly, so the second response is read by a later read of the same readable event.
    const origin = await rawOrigin((socket, n) => {
      if (n === 1) {
        socket.write("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n");
        setTimeout(() => socket.write("aaaaaHTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nevil"), 100);
      } else socket.write("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb");
    });
    const client = clientFor(origin.port, { maxConnections: 1 });
    const [a, b] = await Promise.all([
      client.get("/a", HEADERS, 100, NO_SIGNAL),
      client.get("/b", HEADERS, 100, NO_SIGNAL), // waits for the one connection
    ]);
    expect(a.body!.toString()).toBe("aaaaa");
    expect(b.body!.toString()).toBe("b");
    expect(origin.connectionCount()).toBe(2);
  });

  it("never hands bytes after a chunked body that ends at a read's end to the waiting request", async () => {
    // Head and chunked body are exactly one 64 KiB read (the scratch buffer); the second response is in the same
    // write, so it waits in the kernel for the next read. The loop is blocked while the bytes cross loopback, so the
    // first read finds all 64 KiB.
    const head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
    let size = 65_536 - head.length - "\r\n\r\n0\r\n\r\n".length;
    size -= size.toString(16).length;
    const first = `${head}${size.toString(16)}\r\n${"a".repeat(size)}\r\n0\r\n\r\n`;
    expect(first.length).toBe(65_536);
    const origin = await rawOrigin((socket, n) => {
      if (n === 1) {
        socket.write(`${first}HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nevil`);
        for (const until = Date.now() + 50; Date.now() < until;);
      } else socket.write("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb");
    });
    const client = clientFor(origin.port, { maxConnections: 1 });
    const [a, b] = await Promise.all([
      client.get("/a", HEADERS, 1e6, NO_SIGNAL),
      client.get("/b", HEADERS, 1e6, NO_SIGNAL),
    ]);
    expect(a.body!.byteLength).toBe(size);
    expect(b.body!.toString()).toBe("b");
    expect(origin.connectionCount()).toBe(2);
  });

  it("fails on 101 Switching Protocols (never asked for) and does not reuse the connection", async () => {
    const origin = await rawOrigin((socket, n) => {
      if (n === 1) {
        socket.write(
          "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n" +
            "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nevil",
        );
      } else socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    });
    const client = clientFor(origin.port);
    await expectCode(client.get("/a", HEADERS, 100, NO_SIGNAL), "ORIGIN_FAILED");
    expect((await client.get("/a", HEADERS, 100, NO_SIGNAL)).body!.toString()).toBe("ok");
    expect(origin.connectionCount()).toBe(2);
  });

  it.each([
    ["a malformed status line", "HTTP/1.1 OK\r\n\r\n"],
    ["a malformed header line", "HTTP/1.1 200 OK\r\nno colon here\r\ncontent-length: 1\r\n\r\nx"],
    ["a folded header line", "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n folded\r\n\r\nx"],
    ["two different Content-Lengths", "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nxx"],
    ["a non-numeric Content-Length", "HTTP/1.1 200 OK\r\ncontent-length: 1x\r\n\r\nx"],
    ["an unsupported transfer coding", "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n"],
    ["a malformed chunk size", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n"],
    ["more bytes than declared", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nxyz"],
    ["an oversized head", `HTTP/1.1 200 OK\r\nx-pad: ${"a".repeat(MAX_HEAD_BYTES)}\r\ncontent-length: 1\r\n\r\nx`],
  ])("fails on %s (ORIGIN_FAILED)", async (_name, answer) => {
    const origin = await rawOrigin((socket) => socket.write(answer));
    await expectCode(clientFor(origin.port).get("/a", HEADERS, 100, NO_SIGNAL), "ORIGIN_FAILED");
  });

  it("refuses a request target that would break the request line", async () => {
    await expectCode(clientFor(port).get("/a b", HEADERS, 100, NO_SIGNAL), "INVALID_PATH");
    await expectCode(clientFor(port).get("/a\r\nx: y", HEADERS, 100, NO_SIGNAL), "INVALID_PATH");
  });

  it("honours the origin's Keep-Alive timeout hint", async () => {
    const origin = await rawOrigin((socket) =>
      socket.write("HTTP/1.1 200 OK\r\nkeep-alive: timeout=1\r\ncontent-length: 2\r\n\r\nok"),
    );
    const client = clientFor(origin.port);
    await client.get("/a", HEADERS, 100, NO_SIGNAL);
    // timeout=1 minus the 1 s margin: the idle connection is closed at once, not after keepAliveMs (30 s)
    for (let waitedMs = 0; client.connectionCount > 0 && waitedMs < 2000; waitedMs += 10)
      await new Promise((resolve) => setTimeout(resolve, 10));
    expect(client.connectionCount).toBe(0);
    await client.get("/a", HEADERS, 100, NO_SIGNAL);
    expect(origin.connectionCount()).toBe(2);
  });
});

describe("OriginClient behind the proxy", () => {
  let app: App | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it("with one origin connection, never serves or caches bytes sent after a.jpg's body as b.jpg", async () => {
    const [a, b, evil] = await Promise.all([makeJpeg(40, 30, 1), makeJpeg(60, 30, 2), makeJpeg(77, 30, 3)]);
    let sendRestOfA = (): void => undefined;
    let onRequestA = (): void => undefined;
    const requestedA = new Promise<void>((resolve) => (onRequestA = resolve));
    const origin = await rawOrigin((socket, _n, head) => {
      const path = head.split(" ")[1];
      if (path === "/a.jpg") {
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: ${a.byteLength}\r\n\r\n`);
        // then, in one write, a's body and a whole response nobody asked for
        sendRestOfA = () =>
          socket.write(
            Buffer.concat([
              a,
              Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: ${evil.byteLength}\r\n\r\n`),
              evil,
            ]),
          );
        onRequestA();
      } else if (path === "/b.jpg") {
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: ${b.byteLength}\r\n\r\n`);
        socket.write(b);
      } else socket.write("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
    });
    app = await startProxy({ origin: `http://127.0.0.1:${origin.port}/`, originConnections: 1 });
    const proxyUrl = app.url;
    const stats = app.stats;

    const responseA = fetch(`${proxyUrl}/img/a.jpg`);
    await requestedA;
    const responseB = fetch(`${proxyUrl}/img/b.jpg`);
    // b's download has begun: it waits for the one origin connection, which a's response holds
    while (stats.originFetches < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    sendRestOfA();

    const widthOf = async (response: Response): Promise<number | undefined> =>
      (await imageFacts(Buffer.from(await response.arrayBuffer()))).width;
    const [gotA, gotB] = await Promise.all([responseA, responseB]);
    expect({ a: gotA.status, b: gotB.status }).toEqual({ a: 200, b: 200 });
    expect({ a: await widthOf(gotA), b: await widthOf(gotB) }).toEqual({ a: 40, b: 60 });
    const again = await fetch(`${proxyUrl}/img/b.jpg`);
    expect(again.headers.get("x-cache")).toBe("HIT");
    expect(await widthOf(again)).toBe(60);
  });
});
