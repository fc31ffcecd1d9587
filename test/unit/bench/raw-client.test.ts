import { createServer } from "node:http";
import type { Server } from "node:http";
import { createServer as createNetServer } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getOnEach, openConnections, RawConnection } from "../../../bench/lib/raw-client.ts";

const BODY = Buffer.alloc(300_000, 7);

function listen(server: Server | ReturnType<typeof createNetServer>): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

describe("bench RawConnection (the herd's client)", () => {
  let base = "";
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.url} ${req.headers.accept}`);
    if (req.url === "/length") {
      res.writeHead(200, { "content-length": BODY.length });
      res.end(BODY);
    } else if (req.url === "/chunked") {
      res.writeHead(200); // no length: node:http sends it chunked
      res.write(BODY.subarray(0, 1000));
      setTimeout(() => res.end(BODY.subarray(1000)), 5);
    } else if (req.url === "/not-modified") {
      res.writeHead(304, { etag: '"x"' });
      res.end();
    } else {
      res.writeHead(404, { "content-type": "application/json" });
      res.end('{"error":"NOT_FOUND"}');
    }
  });
  beforeAll(async () => {
    base = await listen(server);
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it("reads Content-Length, chunked, 304 and error responses in turn on one keep-alive connection", async () => {
    const [connection] = await openConnections(base, 1);
    if (!connection) throw new Error("no connection");
    const host = new URL(base).host;
    for (let round = 0; round < 2; round++) {
      expect(await connection.get("/length", host, "image/webp")).toMatchObject({ status: 200, bytes: BODY.length });
      expect(await connection.get("/chunked", host, "image/webp")).toMatchObject({ status: 200, bytes: BODY.length });
      expect(await connection.get("/not-modified", host, "image/webp")).toMatchObject({ status: 304, bytes: 0 });
      expect(await connection.get("/missing?x=1", host, "image/webp")).toMatchObject({ status: 404, bytes: 21 });
    }
    connection.close();
    expect(seen.slice(0, 2)).toEqual(["/length image/webp", "/chunked image/webp"]);
  });

  it("sends one request on each connection at once and returns every answer", async () => {
    const connections = await openConnections(base, 20);
    const results = await getOnEach(connections, `${base}/length`, "image/avif");
    expect(results.map((r) => `${r.status} ${r.bytes}`)).toEqual(Array(20).fill(`200 ${BODY.length}`));
    for (const c of connections) c.close();
  });

  it("reports status 0 when the server closes mid-body, and reads an unframed body until close", async () => {
    const raw = createNetServer((socket) => {
      socket.once("data", (data) => {
        const cut = data.toString().includes("/cut");
        socket.end(
          cut
            ? "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-a-part"
            : "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close",
        );
      });
    });
    const rawBase = await listen(raw);
    try {
      const [cut] = await openConnections(rawBase, 1);
      expect(await cut?.get("/cut", "x", "*/*")).toMatchObject({ status: 0 });
      const [unframed] = await openConnections(rawBase, 1);
      expect(await unframed?.get("/close", "x", "*/*")).toMatchObject({ status: 200, bytes: 11 });
      expect(await unframed?.get("/again", "x", "*/*")).toMatchObject({ status: 0 });
    } finally {
      raw.close();
    }
  });

  it("refuses a second request while one is in flight", async () => {
    const connection = await RawConnection.open("127.0.0.1", Number(new URL(base).port));
    const first = connection.get("/length", "x", "*/*");
    expect(() => connection.get("/length", "x", "*/*")).toThrow(/one request at a time/);
    expect((await first).status).toBe(200);
    connection.close();
  });
});
