import { ProxyError } from "../errors.ts";
import type { CachingHeaders } from "./origin-caching.ts";

/** A final (non-1xx) response head: what the origin client needs to frame the body and reuse the connection. */
export interface ResponseHead {
  readonly isInterim: false;
  readonly statusCode: number;
  readonly contentLength: number | undefined;
  /** Every Transfer-Encoding line, joined with ", "; undefined when there was none. */
  readonly transferEncoding: string | undefined;
  readonly location: string | undefined;
  /** HTTP/1.0, or a "close" option in Connection: the origin ends the connection after this response. */
  readonly shouldClose: boolean;
  /** The "timeout=N" of the last Keep-Alive line: how long the origin keeps an idle connection open. */
  readonly keepAliveTimeoutSeconds: number | undefined;
  readonly caching: CachingHeaders;
}

/** An interim 1xx head (103 Early Hints, 100 Continue): a final one follows, so its header lines are not read. */
export interface InterimHead {
  readonly isInterim: true;
  readonly statusCode: number;
}

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/;
/** RFC 9110 §5.1: a field name is a token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** 15 digits stay below 2^53, so Number() reads them exactly (and 10^15 bytes is past any cap). */
const CONTENT_LENGTH = /^\d{1,15}$/;
/** Matched against ",option,option…" (lower case) built from every Connection line. */
const CLOSE_OPTION = /(?:^|,)\s*close\s*(?:,|$)/;
/** The timeout parameter itself, not one whose name ends in "timeout" ("xtimeout=5"). */
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i;

/**
 * Parses the text of an HTTP/1.1 response head (latin1, up to but without its blank line) into the fields the origin
 * client uses, refusing what it cannot trust to frame a body with ORIGIN_FAILED. Pure: applying the head to a
 * connection is OriginConnection's job.
 */
export function parseResponseHead(text: string): ResponseHead | InterimHead {
  const lines = text.split("\r\n");
  const status = STATUS_LINE.exec(lines[0] ?? "");
  if (!status) throw new ProxyError("ORIGIN_FAILED", "the origin sent a malformed status line");
  const statusCode = Number(status[2]);
  // RFC 9110 §15.2.2: 101 answers an Upgrade, which we never send; what follows it is not HTTP/1.1, so it is no
  // interim response to skip (100, 103 and the rest of 1xx are).
  if (statusCode === 101)
    throw new ProxyError("ORIGIN_FAILED", "the origin switched protocols (101) though no upgrade was asked for");
  if (statusCode >= 100 && statusCode < 200) return { isInterim: true, statusCode };
  let contentLength: number | undefined;
  let transferEncoding: string | undefined;
  let location: string | undefined;
  // An HTTP/1.0 response always ends its connection here, even with "Connection: keep-alive".
  let connection = status[1] === "0" ? "close" : "";
  let keepAliveHint: string | undefined;
  const caching: { -readonly [K in keyof CachingHeaders]: CachingHeaders[K] } = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!; // i < lines.length
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name)) throw new ProxyError("ORIGIN_FAILED", "the origin sent a malformed header line");
    const value = line.slice(colon + 1).trim();
    switch (name.toLowerCase()) {
      case "content-length": {
        // RFC 9112 §6.3: an invalid Content-Length, or two that differ, leave the framing unknown
        if (!CONTENT_LENGTH.test(value) || (contentLength !== undefined && contentLength !== Number(value)))
          throw new ProxyError("ORIGIN_FAILED", "the origin sent an invalid Content-Length");
        contentLength = Number(value);
        break;
      }
      case "transfer-encoding":
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
        break;
      case "location":
        location = value;
        break;
      case "connection":
        connection += `,${value.toLowerCase()}`;
        break;
      case "keep-alive":
        keepAliveHint = value;
        break;
      case "etag":
        caching.etag = value;
        break;
      case "last-modified":
        caching.lastModified = value;
        break;
      case "cache-control":
        caching.cacheControl = caching.cacheControl === undefined ? value : `${caching.cacheControl}, ${value}`;
        break;
      case "expires":
        caching.expires = value;
        break;
      case "date":
        caching.date = value;
        break;
      case "age":
        caching.age = value;
        break;
    }
  }
  const timeout = keepAliveHint === undefined ? undefined : KEEP_ALIVE_TIMEOUT.exec(keepAliveHint);
  return {
    isInterim: false,
    statusCode,
    contentLength,
    transferEncoding,
    location,
    shouldClose: CLOSE_OPTION.test(connection),
    keepAliveTimeoutSeconds: timeout ? Number(timeout[1]) : undefined,
    caching,
  };
}
