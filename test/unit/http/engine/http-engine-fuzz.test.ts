import fc from "fast-check";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { createHttpEngine } from "../../../../src/http/engine/http-engine.ts";
import { sendError } from "../../../../src/http/respond.ts";
import type { HttpEngine } from "../../../../src/http/engine/http-engine.ts";
import { WireClient, destroyWireClients } from "../../../helpers/wire-client.ts";

const SILENT = pino({ level: "silent" });

/**
 * The engine under generated input on real sockets: valid requests pipelined and cut at arbitrary points must each get
 * their own reply, in order; arbitrary bytes must get a 400-class reply or a close, never a crash or a reply to a
 * request that was not sent.
 */
let engine: HttpEngine;
let port: number;
let handled = 0;

beforeAll(async () => {
  engine = createHttpEngine({
    handler: (req, res) => {
      handled++;
      const body = `${req.method} ${req.url} ${req.headers["x-n"] ?? "-"}`;
      const reply = (): void => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(body);
      };
      // Some replies are late, so later pipelined requests wait behind them.
      if (req.url.endsWith("/slow")) setTimeout(reply, 2);
      else reply();
    },
    headersTimeoutMs: 2000,
    keepAliveTimeoutMs: 2000,
    sendTimeoutMs: 60_000,
    maxRequestsPerSocket: 1000,
    maxConnectionsPerClient: 1000,
    clientKeyOf: () => "fuzz",
    onRejectedConnection: () => {},
    onRefusedRequest: (res, error) => sendError(res, error, SILENT),
  });
  await new Promise<void>((resolve) => engine.server.listen(0, "127.0.0.1", resolve));
  port = (engine.server.address() as AddressInfo).port;
});

afterAll(async () => {
  destroyWireClients();
  await engine.close(100);
});

const segment = fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/);
const request = fc.record({
  method: fc.constantFrom("GET", "HEAD", "DELETE", "OPTIONS"),
  path: fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join("/")}`),
  isSlow: fc.boolean(),
  query: fc.option(fc.stringMatching(/^[a-z]=[0-9a-z]{0,8}$/), { nil: undefined }),
  headers: fc.array(
    fc.tuple(
      fc.stringMatching(/^x-h-[a-z]{1,10}$/),
      fc.stringMatching(/^[ -~]{0,40}$/).map((v) => v.trim()),
    ),
    { maxLength: 6 },
  ),
});

describe("HTTP engine under generated input", () => {
  it("answers pipelined requests, cut anywhere, each once and in order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(request, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        async (requests, cuts) => {
          const texts = requests.map((r, n) => {
            const url = `${r.path}${r.isSlow ? "/slow" : ""}${r.query === undefined ? "" : `?${r.query}`}`;
            const lines = r.headers.map(([name, value]) => `${name}: ${value}\r\n`).join("");
            return {
              method: r.method,
              url,
              text: `${r.method} ${url} HTTP/1.1\r\nHost: x\r\nX-N: ${n}\r\n${lines}\r\n`,
            };
          });
          const bytes = Buffer.from(texts.map((t) => t.text).join(""), "latin1");
          const points = [...new Set(cuts.map((c) => c % bytes.length))].sort((a, b) => a - b);
          const client = await WireClient.open(port);
          let from = 0;
          for (const point of [...points, bytes.length]) {
            client.write(bytes.subarray(from, point));
            from = point;
            await new Promise((resolve) => setImmediate(resolve));
          }
          for (const [n, sent] of texts.entries()) {
            const res = await client.read(sent.method);
            expect(res.status).toBe(200);
            if (sent.method !== "HEAD") expect(res.body.toString()).toBe(`${sent.method} ${sent.url} ${n}`);
          }
          expect(client.unread.length).toBe(0);
          client.destroy();
        },
      ),
      { numRuns: 60 },
    );
  });

  it("meets arbitrary bytes with a 400-class reply or a close, and keeps serving", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 600 }), async (garbage) => {
        const before = handled;
        const client = await WireClient.open(port);
        client.write(Buffer.from(garbage));
        client.socket.end();
        await client.closed();
        const text = client.unread.toString("latin1");
        if (text !== "") expect(text).toMatch(/^HTTP\/1\.1 (400|414|431) /);
        expect(handled).toBe(before); // random bytes are never a request with a Host that reaches a handler
      }),
      { numRuns: 150 },
    );
    const client = await WireClient.open(port);
    client.write("GET /still-here HTTP/1.1\r\nHost: x\r\nX-N: 1\r\n\r\n");
    expect((await client.read()).body.toString()).toBe("GET /still-here 1");
  });

  it("meets mutated requests with well-formed replies, at most one per request sent, and keeps serving", async () => {
    const valid = Buffer.from(
      "GET /a/b?w=1 HTTP/1.1\r\nHost: x\r\nX-N: 1\r\nAccept: image/webp\r\n\r\n" +
        "HEAD /c/slow HTTP/1.1\r\nHost: x\r\nX-N: 2\r\nRange: bytes=0-1\r\n\r\n",
      "latin1",
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }), fc.boolean()), {
          minLength: 1,
          maxLength: 4,
        }),
        async (mutations) => {
          const bytes = [...valid];
          for (const [at, byte, isInsert] of mutations) {
            if (isInsert) bytes.splice(at, 0, byte);
            else bytes[at] = byte;
          }
          const before = handled;
          const client = await WireClient.open(port);
          client.write(Buffer.from(bytes));
          client.socket.end();
          await client.closed();
          expect(handled - before).toBeLessThanOrEqual(2);
          const text = client.unread.toString("latin1");
          const statuses = [...text.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((m) => Number(m[1]));
          expect(statuses.length).toBeLessThanOrEqual(2);
          for (const status of statuses) expect([200, 400, 414, 431]).toContain(status);
          if (text !== "") expect(text).toMatch(/^HTTP\/1\.1 /);
        },
      ),
      { numRuns: 200 },
    );
    const client = await WireClient.open(port);
    client.write("GET /still-here HTTP/1.1\r\nHost: x\r\nX-N: 1\r\n\r\n");
    expect((await client.read()).body.toString()).toBe("GET /still-here 1");
  });
});
