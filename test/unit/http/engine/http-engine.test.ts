import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import type { RequestHandler } from "../../../../src/http/engine/connection.ts";
import { createHttpEngine } from "../../../../src/http/engine/http-engine.ts";
import { sendError } from "../../../../src/http/respond.ts";
import type { HttpEngine, HttpEngineOptions } from "../../../../src/http/engine/http-engine.ts";
import { WireClient, destroyWireClients, get } from "../../../helpers/wire-client.ts";

const SILENT = pino({ level: "silent" });

const BODY = Buffer.from("0123456789");
const LINES = 'content-type: image/jpeg\r\netag: "abc"\r\n';
const engines: HttpEngine[] = [];

afterEach(async () => {
  destroyWireClients();
  await Promise.all(engines.splice(0).map((engine) => engine.close(100)));
});

async function serve(handler: RequestHandler, options: Partial<HttpEngineOptions> = {}): Promise<number> {
  const engine = createHttpEngine({
    handler,
    headersTimeoutMs: 5000,
    keepAliveTimeoutMs: 5000,
    sendTimeoutMs: 60_000,
    maxRequestsPerSocket: 1000,
    maxConnectionsPerClient: 100,
    clientKeyOf: (socket) => socket.remoteAddress ?? "",
    onRejectedConnection: () => {},
    onRefusedRequest: (res, error) => sendError(res, error, SILENT),
    ...options,
  });
  engines.push(engine);
  await new Promise<void>((resolve) => engine.server.listen(0, "127.0.0.1", resolve));
  return (engine.server.address() as AddressInfo).port;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** More than loopback's socket buffers hold: while the client reads nothing, most of it waits in the server. */
const BIG = Buffer.alloc(48 * 1024 * 1024, 7);

/** Serves BIG to every request; resolves with the port. */
function serveBig(options: Partial<HttpEngineOptions> = {}): Promise<number> {
  return serve((_req, res) => {
    res.writeHeadLines(200, "");
    res.end(BIG);
  }, options);
}

/** The next reply's body length, or the error that ended the read (a 48 MB body never goes to expect()). */
function bodyLengthOrError(client: WireClient): Promise<number | string> {
  return client.read().then(
    (res) => res.body.length,
    (error: unknown) => String(error),
  );
}

describe("HTTP engine", () => {
  it("writes one head with the route's lines, Date, keep-alive and Content-Length, then the body", async () => {
    const port = await serve((_req, res) => {
      res.writeHeadLines(200, LINES);
      res.end(BODY);
    });
    const client = await WireClient.open(port);
    client.write(get("/"));
    const res = await client.read();
    expect(res.status).toBe(200);
    expect(Object.keys(res.headers).sort()).toEqual(
      ["connection", "content-length", "content-type", "date", "etag", "keep-alive"].sort(),
    );
    expect(res.headers).toMatchObject({ connection: "keep-alive", "keep-alive": "timeout=5", "content-length": "10" });
    expect(new Date(res.headers["date"]!).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(res.body).toEqual(BODY);
  });

  it("hands every request on a connection the client key worked out once for it", async () => {
    let computed = 0;
    const keys: string[] = [];
    const port = await serve(
      (req, res) => {
        keys.push(req.clientKey);
        res.end("ok");
      },
      { clientKeyOf: (socket) => `key-${++computed}-${socket.remoteAddress ?? ""}` },
    );
    const client = await WireClient.open(port);
    client.write(get("/") + get("/"));
    await client.read();
    await client.read();
    expect(keys).toEqual(["key-1-127.0.0.1", "key-1-127.0.0.1"]);
  });

  it("answers HEAD and 304 without a body, so the next response on the socket is framed right", async () => {
    const port = await serve((req, res) => {
      if (req.url === "/304") res.writeHeadLines(304, LINES);
      else res.writeHeadLines(200, LINES, BODY.length);
      res.end(req.method === "HEAD" ? undefined : BODY);
    });
    const client = await WireClient.open(port);
    client.write(get("/", "", "HEAD") + get("/304") + get("/"));
    const head = await client.read("HEAD");
    expect([head.status, head.headers["content-length"], head.body.length]).toEqual([200, "10", 0]);
    const notModified = await client.read();
    expect([notModified.status, notModified.headers["content-length"]]).toEqual([304, undefined]);
    expect((await client.read()).body).toEqual(BODY);
    await sleep(50);
    expect(client.unread.length).toBe(0);
  });

  it("answers pipelined requests in order when an earlier one is slower", async () => {
    const port = await serve((req, res) => {
      const reply = (): void => {
        res.writeHead(200, { "x-url": req.url });
        res.end(req.url);
      };
      if (req.url === "/slow") setTimeout(reply, 100);
      else reply();
    });
    const client = await WireClient.open(port);
    client.write(get("/slow") + get("/fast-1") + get("/fast-2"));
    const urls = [];
    for (let i = 0; i < 3; i++) urls.push((await client.read()).body.toString());
    expect(urls).toEqual(["/slow", "/fast-1", "/fast-2"]);
  });

  it("reads no further while a client pipelines faster than it reads (memory stays at one reply)", async () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 7);
    let handled = 0;
    const port = await serve((_req, res) => {
      handled++;
      res.writeHeadLines(200, "");
      res.end(big);
    });
    const client = await WireClient.open(port);
    client.socket.pause(); // the client reads nothing for now
    client.write(get("/").repeat(20));
    await sleep(300);
    expect(handled).toBeLessThan(5); // the socket stays full: the server waits for it to drain
    client.socket.resume();
    for (let i = 0; i < 20; i++) expect((await client.read()).body.length).toBe(big.length);
    expect(handled).toBe(20);
  });

  it("answers a request that announces a body, closes, and never reads the body as a request", async () => {
    const urls: string[] = [];
    const port = await serve((req, res) => {
      urls.push(req.url);
      res.end("ok");
    });
    const smuggled = get("/smuggled");
    for (const framing of [`Content-Length: ${smuggled.length}`, "Transfer-Encoding: chunked"]) {
      const client = await WireClient.open(port);
      // The body is a request (exactly Content-Length bytes, or an unterminated chunk), then a real one follows.
      client.write(`POST /first HTTP/1.1\r\nHost: x\r\n${framing}\r\n\r\n${smuggled}${get("/after")}`);
      const res = await client.read();
      expect(res.headers["connection"]).toBe("close");
      await client.closed();
      expect(client.unread.length).toBe(0);
    }
    expect(urls).toEqual(["/first", "/first"]);
  });

  it("refuses a bad Content-Length for the body it is given, and cuts the connection without a byte", async () => {
    const port = await serve((_req, res) => {
      res.writeHead(200, { "content-length": 5 });
      res.end(BODY);
    });
    const client = await WireClient.open(port);
    client.write(get("/"));
    await client.closed();
    expect(client.unread.length).toBe(0);
  });

  it("refuses header values that could split the head", async () => {
    const errors: unknown[] = [];
    const port = await serve((_req, res) => {
      try {
        res.setHeader("x-a", "1\r\nset-cookie: a=b");
      } catch (error) {
        errors.push(error);
      }
      res.end("ok");
    });
    const client = await WireClient.open(port);
    client.write(get("/"));
    const res = await client.read();
    expect(res.headers["set-cookie"]).toBeUndefined();
    expect(errors).toHaveLength(1);
  });

  it("streams a body with back-pressure, and cuts a stream that ends short of its Content-Length", async () => {
    const chunk = Buffer.alloc(256 * 1024, 1);
    const port = await serve((req, res) => {
      const chunks = req.url === "/short" ? 3 : 8;
      res.writeHead(200, { "content-length": chunk.length * 8 });
      res.stream(Readable.from(Array.from({ length: chunks }, () => chunk)));
    });
    const client = await WireClient.open(port);
    client.write(get("/full") + get("/full"));
    expect((await client.read()).body.length).toBe(chunk.length * 8);
    expect((await client.read()).body.length).toBe(chunk.length * 8);
    const short = await WireClient.open(port);
    short.write(get("/short"));
    await short.closed();
    expect(short.unread.length).toBe(chunk.length * 3 + short.unread.indexOf("\r\n\r\n") + 4);
  });

  it("closes after maxRequestsPerSocket replies, saying so on the last one", async () => {
    const port = await serve((_req, res) => res.end("ok"), { maxRequestsPerSocket: 3 });
    const client = await WireClient.open(port);
    client.write(get("/").repeat(3));
    const connections = [];
    for (let i = 0; i < 3; i++) connections.push((await client.read()).headers["connection"]);
    expect(connections).toEqual(["keep-alive", "keep-alive", "close"]);
    await client.closed();
  });

  it("answers 408 to a head that does not arrive in time, and closes an idle connection quietly", async () => {
    const port = await serve((_req, res) => res.end("ok"), { headersTimeoutMs: 200, keepAliveTimeoutMs: 200 });
    const slow = await WireClient.open(port);
    slow.write("GET / HTTP/1.1\r\nHost: x\r\n");
    const timedOut = await slow.read();
    const { error } = JSON.parse(timedOut.body.toString()) as { error: string };
    expect([timedOut.status, error]).toEqual([408, "REQUEST_TIMEOUT"]);
    await slow.closed();
    const idle = await WireClient.open(port);
    idle.write(get("/"));
    expect((await idle.read()).headers["keep-alive"]).toBeUndefined(); // under a second: no timeout=0 to mislead
    await idle.closed();
    expect(idle.unread.length).toBe(0);
  });

  it("cuts a refused connection at once when the refusal handler does not answer", async () => {
    const port = await serve((_req, res) => res.end("ok"), { onRefusedRequest: () => {} });
    const client = await WireClient.open(port);
    client.write("GET / HTTP/1.1\r\n\r\n" + get("/")); // no Host: refused, and the request behind it never answered
    await client.closed();
    expect(client.unread.length).toBe(0);
  });

  it("does not count a reply still being sent as idle time: a slow reader gets the whole body", async () => {
    const port = await serveBig({ keepAliveTimeoutMs: 200, sendTimeoutMs: 10_000 });
    const client = await WireClient.open(port);
    client.socket.pause(); // reads nothing for a while: the reply waits in the server's socket buffer
    client.write(get("/"));
    await sleep(800);
    client.socket.resume();
    expect(await bodyLengthOrError(client)).toBe(BIG.length);
  });

  it("cuts a reply that makes no progress for the send timeout (slow-read guard)", async () => {
    const port = await serveBig({ sendTimeoutMs: 300 });
    const client = await WireClient.open(port);
    client.socket.pause();
    client.write(get("/"));
    await sleep(1500); // the send timeout and a sweep or two
    client.socket.resume();
    expect(await bodyLengthOrError(client)).toMatch(/closed/); // what was in flight arrives, then the close
  });

  it("closes a connection that never sends a byte after the header timeout, even with no idle timeout", async () => {
    const port = await serve((_req, res) => res.end("ok"), { headersTimeoutMs: 200, keepAliveTimeoutMs: 0 });
    const silent = await WireClient.open(port);
    const talking = await WireClient.open(port);
    talking.write(get("/"));
    expect((await talking.read()).body.toString()).toBe("ok");
    await silent.closed();
    await sleep(400);
    expect(talking.isEnded).toBe(false); // served once, idle: kept (keep-alive timeout 0 means never)
  });

  it("lets a reply that is still being sent finish when the server closes", async () => {
    const port = await serveBig();
    const client = await WireClient.open(port);
    client.socket.pause();
    client.write(get("/"));
    await sleep(300);
    const closing = engines[0]!.close(10_000);
    await sleep(300); // the close's first sweeps of idle connections
    client.socket.resume();
    expect(await bodyLengthOrError(client)).toBe(BIG.length);
    await closing;
  });

  it("finishes the reply in flight on close, with connection: close, and closes idle connections at once", async () => {
    let release: (() => void) | undefined;
    const port = await serve((_req, res) => {
      release = () => res.end("done");
    });
    const idle = await WireClient.open(port);
    const busy = await WireClient.open(port);
    busy.write(get("/"));
    while (release === undefined) await sleep(5);
    const closing = engines[0]!.close(2000);
    await idle.closed();
    release();
    const res = await busy.read();
    expect([res.body.toString(), res.headers["connection"]]).toEqual(["done", "close"]);
    await closing;
  });
});
