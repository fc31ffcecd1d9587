import { describe, expect, it } from "vitest";
import { ProxyError } from "../../../src/errors.ts";
import { parseResponseHead } from "../../../src/fetcher/response-head.ts";

/** A response head as OriginConnection hands it over: lines joined with CRLF, without the blank line. */
const head = (...lines: string[]): string => lines.join("\r\n");

function refusalOf(text: string): { code: string; message: string } | undefined {
  try {
    parseResponseHead(text);
  } catch (error) {
    return error instanceof ProxyError
      ? { code: error.code, message: error.message }
      : { code: "not a ProxyError", message: String(error) };
  }
  return undefined;
}

describe("parseResponseHead", () => {
  it("reads a 200's status, Content-Length and caching headers, whatever their case, and skips the rest", () => {
    const parsed = parseResponseHead(
      head(
        "HTTP/1.1 200 OK",
        "Content-Type: image/jpeg",
        "content-length: 3200000",
        'ETag: "abc-1"',
        "Last-Modified: Wed, 01 Jan 2025 11:00:00 GMT",
        "CACHE-CONTROL: public, max-age=600",
        "Expires: Wed, 01 Jan 2025 13:00:00 GMT",
        "Date: Wed, 01 Jan 2025 12:00:00 GMT",
        "Age:  30 ",
        "X-Unknown: kept out",
      ),
    );
    expect(parsed).toEqual({
      isInterim: false,
      statusCode: 200,
      contentLength: 3_200_000,
      transferEncoding: undefined,
      location: undefined,
      shouldClose: false,
      keepAliveTimeoutSeconds: undefined,
      caching: {
        etag: '"abc-1"',
        lastModified: "Wed, 01 Jan 2025 11:00:00 GMT",
        cacheControl: "public, max-age=600",
        expires: "Wed, 01 Jan 2025 13:00:00 GMT",
        date: "Wed, 01 Jan 2025 12:00:00 GMT",
        age: "30", // trimmed
      },
    });
  });

  it("joins repeated Cache-Control lines, and takes a redirect's Location and a status line without a reason", () => {
    const joined = parseResponseHead(head("HTTP/1.1 200 OK", "Cache-Control: public", "Cache-Control: max-age=60"));
    expect(joined).toMatchObject({ caching: { cacheControl: "public, max-age=60" } });
    const redirect = parseResponseHead(head("HTTP/1.1 302", "Location: /elsewhere.jpg"));
    expect(redirect).toMatchObject({ statusCode: 302, location: "/elsewhere.jpg" });
  });

  it("hands over a chunked Transfer-Encoding, repeated lines joined, beside any Content-Length", () => {
    const chunked = parseResponseHead(head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"));
    expect(chunked).toMatchObject({ transferEncoding: "chunked", contentLength: undefined });
    const both = parseResponseHead(
      head("HTTP/1.1 200 OK", "Transfer-Encoding: gzip", "Transfer-Encoding: chunked", "Content-Length: 10"),
    );
    // judging the coding and the Content-Length beside it is the connection's job (it depends on the status)
    expect(both).toMatchObject({ transferEncoding: "gzip, chunked", contentLength: 10 });
  });

  it("means close for HTTP/1.0, even with keep-alive, and for HTTP/1.1 only with a close option", () => {
    expect(parseResponseHead(head("HTTP/1.0 200 OK", "Content-Length: 1"))).toMatchObject({ shouldClose: true });
    const keepAlive10 = parseResponseHead(head("HTTP/1.0 200 OK", "Connection: keep-alive", "Content-Length: 1"));
    expect(keepAlive10).toMatchObject({ shouldClose: true });
    expect(parseResponseHead(head("HTTP/1.1 200 OK", "Connection: keep-alive"))).toMatchObject({ shouldClose: false });
    expect(parseResponseHead(head("HTTP/1.1 200 OK", "Connection: Upgrade, CLOSE"))).toMatchObject({
      shouldClose: true,
    });
    expect(parseResponseHead(head("HTTP/1.1 200 OK", "Connection: x", "Connection: close"))).toMatchObject({
      shouldClose: true,
    });
    expect(parseResponseHead(head("HTTP/1.1 200 OK", "Connection: closed"))).toMatchObject({ shouldClose: false });
  });

  it("reads the timeout of the last Keep-Alive line", () => {
    const hinted = parseResponseHead(head("HTTP/1.1 200 OK", "Keep-Alive: max=100, Timeout=5"));
    expect(hinted).toMatchObject({ keepAliveTimeoutSeconds: 5 });
    const last = parseResponseHead(head("HTTP/1.1 200 OK", "Keep-Alive: timeout=5", "Keep-Alive: max=100"));
    expect(last).toMatchObject({ keepAliveTimeoutSeconds: undefined });
    const spaced = parseResponseHead(head("HTTP/1.1 200 OK", "Keep-Alive: timeout = 7"));
    expect(spaced).toMatchObject({ keepAliveTimeoutSeconds: 7 });
    const otherParameter = parseResponseHead(head("HTTP/1.1 200 OK", "Keep-Alive: xtimeout=5, max=100"));
    expect(otherParameter).toMatchObject({ keepAliveTimeoutSeconds: undefined });
  });

  it("refuses a malformed status line", () => {
    const malformed = { code: "ORIGIN_FAILED", message: "the origin sent a malformed status line" };
    for (const line of ["HTTP/2 200 OK", "HTTP/1.1 20 OK", "HTTP/1.1  200 OK", "http/1.1 200 OK", "ICY 200 OK", ""]) {
      expect(refusalOf(head(line, "Content-Length: 1")), line).toEqual(malformed);
    }
  });

  it("refuses 101 Switching Protocols, which no request of ours asks for", () => {
    expect(refusalOf(head("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket"))).toEqual({
      code: "ORIGIN_FAILED",
      message: "the origin switched protocols (101) though no upgrade was asked for",
    });
  });

  it("refuses a header line without a token name: a space, no colon, an empty name, a folded line", () => {
    const malformed = { code: "ORIGIN_FAILED", message: "the origin sent a malformed header line" };
    for (const line of ["Content Length: 5", "Content-Length 5", ": 5", " folded: 5", "Bad\u00e9: 5"]) {
      expect(refusalOf(head("HTTP/1.1 200 OK", line)), line).toEqual(malformed);
    }
  });

  it("refuses a non-numeric Content-Length, and two that differ, but takes a repeated equal one", () => {
    const invalid = { code: "ORIGIN_FAILED", message: "the origin sent an invalid Content-Length" };
    for (const value of ["12a", "-1", "+1", "1.0", "5, 5", "", "1234567890123456"]) {
      expect(refusalOf(head("HTTP/1.1 200 OK", `Content-Length: ${value}`)), value).toEqual(invalid);
    }
    expect(refusalOf(head("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 6"))).toEqual(invalid);
    const repeated = parseResponseHead(head("HTTP/1.1 200 OK", "Content-Length: 5", "content-length: 005"));
    expect(repeated).toMatchObject({ contentLength: 5 });
  });

  it("returns an interim 1xx by its status alone, without reading its header lines", () => {
    const hints = head("HTTP/1.1 103 Early Hints", "Link: </a.css>; rel=preload", "Content-Length: x");
    expect(parseResponseHead(hints)).toEqual({ isInterim: true, statusCode: 103 });
    expect(parseResponseHead("HTTP/1.1 100 Continue")).toEqual({ isInterim: true, statusCode: 100 });
  });
});
