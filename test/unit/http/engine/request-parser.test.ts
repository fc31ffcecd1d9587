import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MAX_HEADER_COUNT,
  MAX_URL_LENGTH,
  RequestParser,
  parserMemoryBytes,
  type ParseResult,
} from "../../../../src/http/engine/request-parser.ts";

function parse(text: string): ParseResult {
  return new RequestParser().feed(Buffer.from(text, "latin1"));
}

function headOf(result: ParseResult): Extract<ParseResult, { kind: "head" }> {
  if (result.kind !== "head") throw new Error(`expected a head, got ${JSON.stringify(result)}`);
  return result;
}

const BROWSER =
  "GET /img/photo.jpg?w=640&f=auto HTTP/1.1\r\nHost: example.com\r\nAccept: image/avif,image/webp,*/*\r\n" +
  "Accept: image/png\r\nCookie: a=1\r\nCookie: b=2\r\nHost-Extra: y\r\nUser-Agent: one\r\nUser-Agent: two\r\n" +
  'If-None-Match: "abc"\r\nRange: bytes=0-9\r\nX-Request-Id: trace-1\r\n\r\n';

describe("request parser (llhttp)", () => {
  it("parses a head into method, target and lower-cased headers, joining repeats as node:http does", () => {
    const { head, rest } = headOf(parse(BROWSER));
    expect(head.method).toBe("GET");
    expect(head.url).toBe("/img/photo.jpg?w=640&f=auto");
    expect({ ...head.headers }).toEqual({
      host: "example.com",
      accept: "image/avif,image/webp,*/*, image/png",
      cookie: "a=1; b=2",
      "host-extra": "y",
      "user-agent": "one", // single-valued: the first wins
      "if-none-match": '"abc"',
      range: "bytes=0-9",
      "x-request-id": "trace-1",
    });
    expect(head).toMatchObject({ isKeepAlive: true, hasBody: false, isUpgrade: false });
    expect(rest.length).toBe(0);
  });

  it("gives the same head however the bytes are split across reads", () => {
    const whole = headOf(parse(BROWSER)).head;
    const bytes = Buffer.from(BROWSER, "latin1");
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }), (cuts) => {
        const parser = new RequestParser();
        const points = [0, ...cuts.sort((a, b) => a - b), bytes.length];
        let found: ParseResult | undefined;
        for (let i = 0; i + 1 < points.length; i++) {
          const result = parser.feed(bytes.subarray(points[i], points[i + 1]));
          if (result.kind !== "more") found = result;
        }
        parser.destroy();
        expect(headOf(found!).head).toEqual(whole);
      }),
      { numRuns: 200 },
    );
  });

  it("stops at each head of pipelined requests and hands back the bytes after it", () => {
    const parser = new RequestParser();
    const first = headOf(
      parser.feed(Buffer.from("GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\nGE")),
    );
    expect(first.head.url).toBe("/a");
    const second = headOf(parser.feed(first.rest));
    expect([second.head.method, second.head.url, second.rest.toString()]).toEqual(["HEAD", "/b", "GE"]);
    expect(parser.feed(second.rest)).toEqual({ kind: "more" });
    expect(parser.isInHead).toBe(true);
    expect(headOf(parser.feed(Buffer.from("T /c HTTP/1.1\r\nHost: x\r\n\r\n"))).head.url).toBe("/c");
  });

  it("drops headers named after Object.prototype's members, so none can shadow them or reach the prototype", () => {
    const { head } = headOf(
      parse("GET / HTTP/1.1\r\nHost: x\r\n__proto__: polluted\r\nConstructor: c\r\ntoString: t\r\nX-A: 1\r\n\r\n"),
    );
    expect(Object.keys(head.headers).sort()).toEqual(["host", "tostring", "x-a"]); // names are lower-cased first
    expect(Object.getPrototypeOf(head.headers)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });

  it.each([
    ["HTTP/1.0 without keep-alive", "GET / HTTP/1.0\r\n\r\n", { isKeepAlive: false }],
    ["HTTP/1.0 with keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", { isKeepAlive: true }],
    ["Connection: close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", { isKeepAlive: false }],
    ["a Content-Length body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", { hasBody: true }],
    ["a chunked body", "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", { hasBody: true }],
    [
      "codings ending in chunked",
      "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n",
      { hasBody: true },
    ],
    ["Content-Length: 0", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", { hasBody: false }],
    ["an upgrade", "GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n", { isUpgrade: true }],
    ["CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", { isUpgrade: true }],
  ])("reads %s", (_name, text, expected) => {
    expect(headOf(parse(text)).head).toMatchObject(expected);
  });

  it.each([
    ["Transfer-Encoding beside Content-Length", "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"],
    ["Content-Length beside Transfer-Encoding", "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"],
    ["two different Content-Lengths", "Content-Length: 3\r\nContent-Length: 4\r\n"],
    ["a Content-Length that is not a number", "Content-Length: 1x\r\n"],
    ["a space before the colon", "X-A : 1\r\n"],
    ["a control character in a value", "X-A: a\x01b\r\n"],
    ["a folded line", "X-A: a\r\n b\r\n"],
    ["a second Host", "Host: y\r\n"],
    ["a Transfer-Encoding that does not end in chunked", "Transfer-Encoding: chunked, identity\r\n"],
    // RFC 9112 §6.3: a request whose final transfer coding is not chunked has no knowable length.
    ["a Transfer-Encoding that only looks like chunked", "Transfer-Encoding: xchunked\r\n"],
    ["a Transfer-Encoding without chunked", "Transfer-Encoding: gzip\r\n"],
    ["a second Transfer-Encoding line after chunked", "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"],
  ])("refuses %s with 400", (_name, extra) => {
    expect(parse(`GET / HTTP/1.1\r\nHost: x\r\n${extra}\r\n`)).toMatchObject({ kind: "error", status: 400 });
  });

  it.each([
    ["an unknown method", "FOO / HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["a lower-case method", "get / HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["bare LF line ends", "GET / HTTP/1.1\nHost: x\n\n"],
    ["a DEL in the target", "GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["an HTTP/1.1 request without Host (RFC 9112 §3.2)", "GET / HTTP/1.1\r\n\r\n"],
    ["the HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"],
  ])("refuses %s with 400", (_name, text) => {
    expect(parse(text)).toMatchObject({ kind: "error", status: 400 });
  });

  it("refuses a long target with 414 and a large or crowded head with 431", () => {
    expect(parse(`GET /${"x".repeat(MAX_URL_LENGTH)} HTTP/1.1\r\nHost: x\r\n\r\n`)).toMatchObject({ status: 414 });
    expect(parse(`GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ${"p".repeat(17_000)}\r\n\r\n`)).toMatchObject({ status: 431 });
    const crowded = Array.from({ length: MAX_HEADER_COUNT }, (_, i) => `h${i}: v\r\n`).join("");
    expect(parse(`GET / HTTP/1.1\r\nHost: x\r\n${crowded}\r\n`)).toMatchObject({ status: 431 });
    const allowed = Array.from({ length: MAX_HEADER_COUNT - 1 }, (_, i) => `h${i}: v\r\n`).join("");
    expect(parse(`GET / HTTP/1.1\r\nHost: x\r\n${allowed}\r\n`).kind).toBe("head");
  });

  it("frees each parser's memory: 50,000 connections' parsers fit in what the first 100 used", () => {
    const cycle = (count: number): void => {
      for (let i = 0; i < count; i++) {
        const parser = new RequestParser();
        parser.feed(Buffer.from(BROWSER, "latin1"));
        parser.destroy();
      }
    };
    cycle(100);
    const settled = parserMemoryBytes();
    cycle(50_000);
    expect(parserMemoryBytes()).toBe(settled);
  });
});
