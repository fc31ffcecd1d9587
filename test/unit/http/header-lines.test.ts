import { createServer } from "node:http";
import type { Server } from "node:http";
import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  CAN_INSERT_LINES,
  parseHeaderLines,
  renderHeaderLines,
  writeHeadWithLines,
} from "../../../src/http/header-lines.ts";

const BODY = Buffer.from("0123456789");
const LINES = renderHeaderLines(["content-type", "image/jpeg", "etag", '"abc"', "x-cache", "HIT"]);

interface RawResponse {
  readonly statusLine: string;
  /** Header lines exactly as sent (name case kept). */
  readonly lines: string[];
  readonly body: Buffer;
  /** The server closed the connection after the response. */
  readonly isClosed: boolean;
}

/** One request on a raw socket: the head as sent, the body framed by Content-Length, and whether the socket closed. */
function exchange(port: number, method = "GET"): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(`${method} / HTTP/1.1\r\nHost: x\r\n\r\n`));
    let data = Buffer.alloc(0);
    let result: Omit<RawResponse, "isClosed"> | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      if (result) resolve({ ...result, isClosed: false });
      else reject(new Error(`no complete response: ${data.toString("latin1")}`));
    }, 300);
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf("\r\n\r\n");
      if (end < 0 || result) return;
      const [statusLine = "", ...lines] = data.subarray(0, end).toString("latin1").split("\r\n");
      const length = Number(lines.find((line) => /^content-length:/i.test(line))?.split(": ")[1] ?? 0);
      const bodyLength = method === "HEAD" || statusLine.includes(" 304 ") ? 0 : length;
      if (data.length < end + 4 + bodyLength) return;
      result = { statusLine, lines, body: data.subarray(end + 4, end + 4 + bodyLength) };
    });
    socket.on("close", () => {
      clearTimeout(timer);
      if (result) resolve({ ...result, isClosed: true });
      else reject(new Error(`closed before a complete response: ${data.toString("latin1")}`));
    });
    socket.on("error", reject);
  });
}

let server: Server | undefined;
afterEach(async () => {
  await stop();
});

async function stop(): Promise<void> {
  const running = server;
  server = undefined;
  if (!running) return;
  running.closeAllConnections();
  await new Promise((resolve) => running.close(resolve));
}

async function serve(status: number, nodePairs: readonly string[], canInsert: boolean): Promise<{ port: number }> {
  server = createServer((_req, res) => {
    writeHeadWithLines(res, status, nodePairs, LINES, canInsert);
    res.end(status === 304 ? undefined : BODY);
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port };
}

describe("header lines", () => {
  it("renders validated lines and refuses what could split a header", () => {
    expect(LINES).toBe('content-type: image/jpeg\r\netag: "abc"\r\nx-cache: HIT\r\n');
    expect(parseHeaderLines(LINES)).toEqual(["content-type", "image/jpeg", "etag", '"abc"', "x-cache", "HIT"]);
    expect(() => renderHeaderLines(["x-a", "1\r\nset-cookie: a=b"])).toThrow();
    expect(() => renderHeaderLines(["x-a", "1\nx-b: 2"])).toThrow();
    expect(() => renderHeaderLines(["x a", "1"])).toThrow();
    expect(() => renderHeaderLines(["x-a\r\nx-b", "1"])).toThrow();
  });

  it("inserts the lines on this Node", () => {
    expect(CAN_INSERT_LINES).toBe(true);
  });

  for (const canInsert of [true, false]) {
    const how = canInsert ? "inserted into Node's head" : "split back into pairs (fallback)";
    it(`sends each line once with Node's own framing and keep-alive headers: ${how}`, async () => {
      const { port } = await serve(200, ["content-length", String(BODY.length)], canInsert);
      const res = await exchange(port);
      expect(res.statusLine).toBe("HTTP/1.1 200 OK");
      const names = res.lines.map((line) => line.slice(0, line.indexOf(":")).toLowerCase());
      expect([...names].sort()).toEqual(
        ["connection", "content-length", "content-type", "date", "etag", "keep-alive", "x-cache"].sort(),
      );
      expect(res.lines).toContain("content-type: image/jpeg");
      expect(res.lines).toContain('etag: "abc"');
      expect(res.lines).toContain("Connection: keep-alive");
      expect(res.body).toEqual(BODY);
      expect(res.isClosed).toBe(false);
    });

    it(`lets Node see Connection: close and close the socket: ${how}`, async () => {
      const { port } = await serve(200, ["connection", "close", "content-length", String(BODY.length)], canInsert);
      const res = await exchange(port);
      expect(res.lines.filter((line) => /^connection:/i.test(line))).toEqual(["connection: close"]);
      expect(res.lines.some((line) => /^keep-alive:/i.test(line))).toBe(false);
      expect(res.lines).toContain("x-cache: HIT");
      expect(res.body).toEqual(BODY);
      expect(res.isClosed).toBe(true);
    });

    it(`answers 304 and HEAD without a body: ${how}`, async () => {
      const notModified = await serve(304, [], canInsert);
      const res304 = await exchange(notModified.port);
      expect(res304.statusLine).toBe("HTTP/1.1 304 Not Modified");
      expect(res304.lines).toContain('etag: "abc"');
      await stop();
      const head = await serve(200, ["content-length", String(BODY.length)], canInsert);
      const resHead = await exchange(head.port, "HEAD");
      expect(resHead.lines).toContain(`content-length: ${BODY.length}`);
      expect(resHead.body.length).toBe(0);
    });
  }
});
