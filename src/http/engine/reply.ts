import { STATUS_CODES, validateHeaderName, validateHeaderValue } from "node:http";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import type { RequestHeaders } from "./request-parser.ts";

/** One request as the handlers see it. */
export interface HttpRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: RequestHeaders;
  /** A body follows the head (Content-Length > 0 or Transfer-Encoding); it is never read, and the connection closes. */
  readonly hasBody: boolean;
  readonly socket: Socket;
  /** The peer's client key (HttpEngineOptions.clientKeyOf), worked out once per connection. */
  readonly clientKey: string;
}

/** What a reply needs from its connection. */
export interface ReplySink {
  readonly socket: Socket;
  /** `connection: close` goes out on this reply (the client asked, a body was announced, the server is closing...). */
  isClosingAfter(): boolean;
  /** The `keep-alive: timeout=N` line of kept-alive replies ("" for none). */
  readonly keepAliveLine: string;
  /** Called once the reply's last byte is handed to the socket (or the reply was abandoned). */
  onReplyDone(shouldClose: boolean): void;
}

const EMPTY: readonly string[] = [];

/** Status lines by code, built once. */
const STATUS_LINES = new Map<number, string>();
function statusLine(status: number): string {
  let line = STATUS_LINES.get(status);
  if (line === undefined) {
    if (!Number.isInteger(status) || status < 100 || status > 999) throw new RangeError(`invalid status ${status}`);
    line = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}\r\n`;
    if (STATUS_CODES[status] !== undefined) STATUS_LINES.set(status, line);
  }
  return line;
}

/** The Date header, rendered once per second (RFC 9110 §6.6.1). */
let dateLine = "";
let dateExpiresMs = 0;
function currentDateLine(): string {
  const now = Date.now();
  if (now >= dateExpiresMs) {
    dateLine = `date: ${new Date(now).toUTCString()}\r\n`;
    dateExpiresMs = now - (now % 1000) + 1000;
  }
  return dateLine;
}

/**
 * A response, with the part of node:http's ServerResponse the handlers use (statusCode, headersSent, setHeader,
 * writeHead, end, destroy, req) plus `writeHeadLines`, the image route's ready-made header block, and `stream`.
 *
 * Framing is this class's job alone: every response carries Content-Length (no chunked encoding), 304 and HEAD
 * responses no body, and a body whose length differs from the declared Content-Length is a bug that throws before
 * a byte is written. The head and the body leave in one corked write (one `writev`).
 */
export class Reply {
  statusCode = 200;
  readonly req: HttpRequest;
  readonly #sink: ReplySink;
  /** Header pairs set by setHeader, names lower-cased, values validated. */
  #pairs: string[] | undefined;
  #lines = "";
  #contentLength = -1; // -1: from the body
  #isHeadWritten = false;
  #isDone = false;
  #shouldClose = false;

  constructor(req: HttpRequest, sink: ReplySink) {
    this.req = req;
    this.#sink = sink;
  }

  /** As ServerResponse: true once writeHead (or end) fixed the head. */
  get headersSent(): boolean {
    return this.#isHeadWritten;
  }

  get isDone(): boolean {
    return this.#isDone;
  }

  setHeader(name: string, value: string | number): this {
    if (this.#isHeadWritten) throw new Error("headers already sent");
    const lower = name.toLowerCase();
    const text = String(value);
    validateHeaderName(lower);
    validateHeaderValue(lower, text);
    const pairs = (this.#pairs ??= []);
    for (let i = 0; i < pairs.length; i += 2) {
      if (pairs[i] === lower) {
        pairs[i + 1] = text;
        return this;
      }
    }
    pairs.push(lower, text);
    return this;
  }

  /** setHeader for each name/value pair of a flat list. */
  setHeaderPairs(pairs: readonly string[]): this {
    for (let i = 0; i + 1 < pairs.length; i += 2) this.setHeader(pairs[i]!, pairs[i + 1]!); // i + 1 < length
    return this;
  }

  /** As ServerResponse.writeHead with a plain object: `headers` join (and override) the ones set before. */
  writeHead(status: number, headers?: Readonly<Record<string, string | number>>): this {
    if (headers) for (const name of Object.keys(headers)) this.setHeader(name, headers[name]!); // own keys
    let lines = "";
    const pairs = this.#pairs ?? EMPTY;
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const name = pairs[i]!; // i + 1 < length
      const value = pairs[i + 1]!;
      if (name === "content-length") {
        if (!/^\d{1,15}$/.test(value)) throw new RangeError(`invalid content-length ${value}`);
        this.#contentLength = Number(value);
      } else if (name === "connection") {
        if (/\bclose\b/i.test(value)) this.#shouldClose = true;
      } else if (name === "transfer-encoding" || name === "date" || name === "keep-alive") {
        throw new Error(`${name} is set by the HTTP engine`);
      } else lines += `${name}: ${value}\r\n`;
    }
    return this.writeHeadLines(status, lines);
  }

  /**
   * The image route's head: `lines` are complete `name: value\r\n` lines that must already be safe on the wire
   * (rendered by renderHeaderLines, or our own tokens and numbers): they are not checked again. They must not hold
   * Content-Length, Date, Connection or Keep-Alive, which this class writes. `contentLength` is the body's length
   * when the body sent is not the whole (HEAD).
   */
  writeHeadLines(status: number, lines: string, contentLength = -1): this {
    if (this.#isHeadWritten) throw new Error("headers already sent");
    this.statusCode = status;
    this.#lines = lines;
    if (contentLength >= 0) this.#contentLength = contentLength;
    this.#isHeadWritten = true;
    return this;
  }

  /** Sends the head and `body` (ignored for HEAD requests, 204 and 304), and finishes the reply. */
  end(body?: string | Buffer): void {
    if (this.#isDone) return;
    if (!this.#isHeadWritten) this.writeHead(this.statusCode);
    const socket = this.#sink.socket;
    const hasNoBody = this.req.method === "HEAD" || this.statusCode === 304 || this.statusCode === 204;
    const bodyLength = body === undefined ? 0 : typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
    if (!hasNoBody && this.#contentLength >= 0 && bodyLength !== this.#contentLength) {
      throw new Error(`body of ${bodyLength} bytes for a content-length of ${this.#contentLength}`);
    }
    const head = this.#renderHead(this.#contentLength >= 0 ? this.#contentLength : bodyLength);
    this.#isDone = true;
    if (!socket.destroyed) {
      if (hasNoBody || bodyLength === 0) socket.write(head, "latin1");
      else {
        socket.cork();
        socket.write(head, "latin1");
        socket.write(body!); // bodyLength > 0
        socket.uncork();
      }
    }
    this.#sink.onReplyDone(this.#shouldClose);
  }

  /**
   * Sends the head, then `source`'s bytes as they come, pausing it while the socket is full. The head must have
   * declared the Content-Length (writeHead); a source that ends short of it, or fails, destroys the connection.
   */
  stream(source: Readable): void {
    if (!this.#isHeadWritten || this.#contentLength < 0) throw new Error("stream() needs a head with content-length");
    const socket = this.#sink.socket;
    if (socket.destroyed) {
      source.destroy(); // the client left while the route found the file: release its descriptor
      this.destroy();
      return;
    }
    const expected = this.#contentLength;
    let sent = 0;
    socket.write(this.#renderHead(expected), "latin1");
    const abandon = (): void => {
      source.destroy();
      this.destroy();
    };
    socket.once("close", abandon);
    source.on("data", (chunk: Buffer) => {
      sent += chunk.byteLength;
      if (sent > expected) return abandon();
      if (!socket.write(chunk)) {
        source.pause();
        socket.once("drain", () => source.resume());
      }
    });
    source.once("error", abandon);
    source.once("end", () => {
      socket.off("close", abandon);
      if (sent !== expected) return abandon();
      this.#isDone = true;
      this.#sink.onReplyDone(this.#shouldClose);
    });
  }

  /** Gives up on the reply and the connection (a failure after the head went out). */
  destroy(): void {
    this.#sink.socket.destroy();
    if (!this.#isDone) {
      this.#isDone = true;
      this.#sink.onReplyDone(true);
    }
  }

  #renderHead(contentLength: number): string {
    const isClosing = this.#shouldClose || this.#sink.isClosingAfter();
    this.#shouldClose = isClosing;
    const connection = isClosing ? "connection: close\r\n" : `connection: keep-alive\r\n${this.#sink.keepAliveLine}`;
    const length = this.statusCode === 304 || this.statusCode === 204 ? "" : `content-length: ${contentLength}\r\n`;
    return `${statusLine(this.statusCode)}${this.#lines}${currentDateLine()}${connection}${length}\r\n`;
  }
}
