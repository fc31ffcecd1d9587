import { connect } from "node:net";
import type { Socket } from "node:net";
import { ProxyError } from "../errors.ts";
import { BodyCollector } from "./body-collector.ts";
import type { SizeListener } from "./fetcher.ts";
import type { CachingHeaders } from "./origin-caching.ts";
import { parseResponseHead } from "./response-head.ts";

/**
 * A small HTTP/1.1 client for the configured plain-HTTP origin: GET only, keep-alive connections, bodies framed by
 * Content-Length, chunked transfer coding or the end of the connection.
 *
 * Ours, beside undici, for one reason: where the socket's reads land. undici (and node:http) receive through a stream
 * that allocates a fresh 64 KiB buffer for every read; here the reads go into one reused buffer (net.connect's
 * `onread`) and, once a Content-Length body starts, straight into the body's own buffer, so a 3 MB original is copied
 * once, by the kernel. Measured on loopback on this project's 2-core VMs, a 3.2 MB original after an idle second
 * (a cold miss): 4.2-8 ms with fresh buffers per read, 1.1-1.5 ms with reused ones (curl: 1.0-1.5 ms). Remote mode,
 * HTTPS and redirects elsewhere keep using undici.
 */
export interface OriginClientOptions {
  readonly host: string;
  readonly port: number;
  /** Host header value, e.g. "origin.lan:8081". */
  readonly hostHeader: string;
  readonly maxConnections: number;
  readonly connectTimeoutMs: number;
  /** From the request's write until the whole response head has arrived. */
  readonly headersTimeoutMs: number;
  /** Longest pause between two reads of a body. */
  readonly bodyTimeoutMs: number;
  /** Idle keep-alive connections close after this long (or sooner, when the origin's Keep-Alive says so). */
  readonly keepAliveMs: number;
}

export interface OriginResponse {
  readonly statusCode: number;
  /** A redirect's Location. */
  readonly location: string | undefined;
  /** The body of a 200; undefined for every other status (whose body is not read). */
  readonly body: Buffer | undefined;
  /** Validators and freshness headers (of a 200 or a 304). */
  readonly caching: CachingHeaders;
}

/** Largest response head accepted, as node:http's default (--max-http-header-size). */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Reads before a body starts (heads, chunked and close-delimited bodies) land here, one per connection. */
const SCRATCH_BYTES = 64 * 1024;
/** Keep-Alive "timeout=N" of the origin minus this margin, so we never send on a connection it is closing. */
const KEEP_ALIVE_MARGIN_MS = 1000;

const REQUEST_TARGET = /^\/[\x21-\x7e]*$/;
const HEX = /^[0-9A-Fa-f]{1,12}$/;

interface Pending {
  readonly maxBytes: number;
  readonly onSize: SizeListener | undefined;
  readonly resolve: (response: OriginResponse) => void;
  readonly reject: (error: unknown) => void;
}

type Framing = "length" | "chunked" | "close";

/** One keep-alive connection; serves one request at a time. */
class OriginConnection {
  readonly socket: Socket;
  readonly #scratch: Buffer = Buffer.allocUnsafe(SCRATCH_BYTES);
  #pending: Pending | undefined;
  /** Bytes of the response head received so far (until its blank line), copied out of the scratch buffer. */
  #head: Buffer | undefined;
  #isInBody = false;
  #framing: Framing = "length";
  /** The body of a 200, set with its framing; a Content-Length body is allocated at once and reads fill it in place. */
  #body: BodyCollector | undefined;
  /** The caching headers of the 200 whose body is arriving. */
  #caching: CachingHeaders = {};
  /**
   * Chunked: bytes of data left in the current chunk; -1 while a size line is expected, -2 in the trailers, -3 for
   * the CRLF after a chunk's data.
   */
  #chunkLeft = -1;
  #line = "";
  #isConnected = false;
  #isReusable = true;
  #keepAliveMs: number;
  #timer: NodeJS.Timeout | undefined;
  /** The body timer is armed: each read only refreshes it (one setTimeout per response, not per 64 KiB). */
  #isBodyTimer = false;
  readonly #options: OriginClientOptions;
  readonly #onFree: (connection: OriginConnection) => void;
  readonly #onGone: (connection: OriginConnection) => void;
  /** Requests sent on this connection; a reused one that fails before any response byte may be retried. */
  #requests = 0;
  #hasResponseBytes = false;

  constructor(
    options: OriginClientOptions,
    onFree: (connection: OriginConnection) => void,
    onGone: (connection: OriginConnection) => void,
  ) {
    this.#options = options;
    this.#keepAliveMs = options.keepAliveMs;
    this.#onFree = onFree;
    this.#onGone = onGone;
    this.socket = connect({
      host: options.host,
      port: options.port,
      noDelay: true,
      onread: {
        buffer: () => this.#readTarget(),
        callback: (n: number) => {
          this.#onRead(n);
          return true; // keep reading
        },
      },
    });
    this.socket.on("connect", () => {
      this.#isConnected = true;
      this.#clearTimer();
      if (this.#pending) this.#armTimer(this.#options.headersTimeoutMs, "the origin did not answer in time");
    });
    this.socket.on("end", () => this.#onEnd());
    this.socket.on("error", (error: NodeJS.ErrnoException) => this.#fail(originFailure(error)));
    this.socket.on("close", () => {
      this.#clearTimer();
      this.#fail(new ProxyError("ORIGIN_FAILED", "the origin closed the connection before the response was complete"));
      this.#onGone(this);
    });
    this.#armTimer(options.connectTimeoutMs, "the origin did not accept the connection in time");
  }

  /** Sends one GET; the connection must be idle. */
  send(target: string, maxBytes: number, headers: string, onSize?: SizeListener): Promise<OriginResponse> {
    return new Promise((resolve, reject) => {
      this.#pending = { maxBytes, onSize, resolve, reject };
      this.#requests++;
      this.#hasResponseBytes = false;
      this.#head = undefined;
      this.#isInBody = false;
      this.#body = undefined;
      this.#chunkLeft = -1;
      this.#line = "";
      this.#clearTimer();
      if (this.#isConnected) this.#armTimer(this.#options.headersTimeoutMs, "the origin did not answer in time");
      else this.#armTimer(this.#options.connectTimeoutMs, "the origin did not accept the connection in time");
      this.socket.write(
        `GET ${target} HTTP/1.1\r\nhost: ${this.#options.hostHeader}\r\n${headers}connection: keep-alive\r\n\r\n`,
      );
    });
  }

  /** Was this a reused connection that failed before the origin sent anything (it closed the idle connection)? */
  get isRetryable(): boolean {
    return this.#requests > 1 && !this.#hasResponseBytes;
  }

  /** Ends the request in progress (the caller gave up): the connection cannot be reused. */
  abort(reason: unknown): void {
    if (!this.#pending) return;
    const pending = this.#pending;
    this.#pending = undefined;
    this.#isReusable = false;
    this.socket.destroy();
    pending.reject(reason);
  }

  close(): void {
    this.#isReusable = false;
    this.socket.destroy();
  }

  /** Where the next read lands: in a Content-Length body, the body's unfilled rest; otherwise the scratch buffer. */
  #readTarget(): Buffer {
    return (this.#isInBody ? this.#body?.unfilled() : undefined) ?? this.#scratch;
  }

  #onRead(n: number): void {
    const pending = this.#pending;
    if (!pending) {
      // Bytes while idle: a protocol error (or a late answer to an aborted request); never reuse this connection.
      this.close();
      return;
    }
    this.#hasResponseBytes = true;
    const body = this.#body;
    if (this.#isInBody && body !== undefined && body.missingBytes > 0) {
      // The kernel wrote straight into the body (#readTarget handed it body.unfilled()), and never past its end.
      body.commitUnfilled(n);
      this.#touchBodyTimer();
      if (body.missingBytes === 0) this.#complete(pending, body);
      return;
    }
    this.#consume(pending, this.#scratch.subarray(0, n));
  }

  /** Bytes read into the scratch buffer: head, then chunked or close-delimited body. */
  #consume(pending: Pending, data: Buffer): void {
    try {
      if (!this.#isInBody) {
        data = this.#takeHead(pending, data);
        if (!this.#isInBody || this.#pending !== pending) return;
      }
      this.#touchBodyTimer();
      const body = this.#body;
      if (data.byteLength === 0 || body === undefined) return; // undefined: already settled
      if (this.#framing === "length") {
        if (data.byteLength > body.missingBytes)
          throw new ProxyError("ORIGIN_FAILED", "the origin sent more bytes than its Content-Length");
        body.push(data, true); // copied out of the reused scratch buffer
        if (body.missingBytes === 0) this.#complete(pending, body);
      } else if (this.#framing === "chunked") this.#takeChunked(pending, body, data);
      else body.push(data, true);
    } catch (error) {
      this.#fail(error);
    }
  }

  /** Collects the response head; returns the bytes after it. Interim 1xx heads are skipped (101 fails the request). */
  #takeHead(pending: Pending, data: Buffer): Buffer {
    for (;;) {
      const before = this.#head;
      const searchFrom = Math.max(0, (before?.byteLength ?? 0) - 3);
      // copied: the scratch buffer is reused by the next read
      const head = before === undefined ? Buffer.from(data) : Buffer.concat([before, data]);
      this.#head = head;
      const end = head.indexOf("\r\n\r\n", searchFrom, "latin1");
      if ((end < 0 ? head.byteLength : end) > MAX_HEAD_BYTES)
        throw new ProxyError("ORIGIN_FAILED", `the origin's response head is larger than ${MAX_HEAD_BYTES} bytes`);
      if (end < 0) return Buffer.alloc(0);
      const rest = head.subarray(end + 4);
      const statusCode = this.#parseHead(pending, head.toString("latin1", 0, end));
      this.#head = undefined;
      if (statusCode >= 100 && statusCode < 200) {
        data = rest; // an interim response (103 Early Hints): the real one follows
        if (data.byteLength === 0) return data;
        continue;
      }
      return rest;
    }
  }

  /** Parses a response head, then applies it: the connection's reuse, an early answer or the body; returns the status. */
  #parseHead(pending: Pending, text: string): number {
    const head = parseResponseHead(text);
    if (head.isInterim) return head.statusCode;
    const { statusCode, contentLength, transferEncoding, location, caching } = head;
    if (head.shouldClose) this.#isReusable = false;
    if (head.keepAliveTimeoutSeconds !== undefined) {
      const hintMs = head.keepAliveTimeoutSeconds * 1000 - KEEP_ALIVE_MARGIN_MS;
      this.#keepAliveMs = Math.min(this.#options.keepAliveMs, hintMs);
    }

    if (statusCode === 304) {
      // RFC 9112 §6.3: a 304 never has a body, whatever its headers say, so the connection stays usable (a revalidation
      // costs one round trip on a warm connection).
      this.#settle(pending, { statusCode, location, body: undefined, caching });
      return statusCode;
    }
    if (statusCode !== 200) {
      // Only a 200's body is used: answer now and drop the connection rather than read an error page.
      this.#isReusable = false;
      this.#settle(pending, { statusCode, location, body: undefined, caching });
      return statusCode;
    }
    if (transferEncoding !== undefined) {
      // RFC 9112 §6.3: with Transfer-Encoding, Content-Length is ignored; only "chunked" last is a framing we read.
      if (!/(?:^|,)\s*chunked\s*$/i.test(transferEncoding) || /,/.test(transferEncoding))
        throw new ProxyError("ORIGIN_FAILED", `the origin used an unsupported transfer coding (${transferEncoding})`);
      this.#framing = "chunked";
      this.#isReusable = this.#isReusable && contentLength === undefined; // both present: a smuggling smell
    } else if (contentLength !== undefined) this.#framing = "length";
    else {
      this.#framing = "close";
      this.#isReusable = false;
    }
    // SOURCE_TOO_LARGE at once when the Content-Length is over the cap
    const body = new BodyCollector(
      pending.maxBytes,
      this.#framing === "length" ? contentLength : undefined,
      pending.onSize,
    );
    this.#body = body;
    this.#caching = caching;
    this.#isInBody = true;
    if (this.#framing === "length" && contentLength === 0) this.#complete(pending, body);
    return statusCode;
  }

  #takeChunked(pending: Pending, body: BodyCollector, data: Buffer): void {
    let at = 0;
    while (at < data.byteLength && this.#pending === pending) {
      if (this.#chunkLeft > 0) {
        const take = Math.min(this.#chunkLeft, data.byteLength - at);
        body.push(data.subarray(at, at + take), true); // copied out of the reused scratch buffer
        this.#chunkLeft -= take;
        at += take;
        if (this.#chunkLeft === 0) this.#chunkLeft = -3; // the CRLF after the data
        continue;
      }
      const newline = data.indexOf(10, at); // "\n"
      const piece = data.toString("latin1", at, newline < 0 ? data.byteLength : newline + 1);
      at = newline < 0 ? data.byteLength : newline + 1;
      this.#line += piece;
      if (this.#line.length > 4096) throw new ProxyError("ORIGIN_FAILED", "the origin sent a malformed chunked body");
      if (newline < 0) return;
      const line = this.#line.replace(/\r?\n$/, "");
      this.#line = "";
      if (this.#chunkLeft === -3) {
        if (line !== "") throw new ProxyError("ORIGIN_FAILED", "the origin sent a malformed chunked body");
        this.#chunkLeft = -1;
      } else if (this.#chunkLeft === -1) {
        const size = line.split(";")[0]!.trim(); // split() returns at least one element
        if (!HEX.test(size)) throw new ProxyError("ORIGIN_FAILED", "the origin sent a malformed chunk size");
        const bytes = Number.parseInt(size, 16);
        this.#chunkLeft = bytes === 0 ? -2 : bytes;
      } else if (line === "") {
        // the blank line after the (ignored) trailers ends the body; bytes after it belong to no request, so this
        // connection is not trusted again
        if (at < data.byteLength) this.#isReusable = false;
        this.#complete(pending, body);
      }
    }
  }

  /** The origin ended its side: completes a close-delimited body; anything else in progress fails on 'close'. */
  #onEnd(): void {
    this.#isReusable = false;
    const pending = this.#pending;
    if (pending && this.#isInBody && this.#framing === "close" && this.#body !== undefined) {
      this.#complete(pending, this.#body);
    }
    this.socket.destroy();
  }

  #complete(pending: Pending, body: BodyCollector): void {
    this.#body = undefined;
    this.#settle(pending, { statusCode: 200, location: undefined, body: body.take(), caching: this.#caching });
  }

  #settle(pending: Pending, response: OriginResponse): void {
    if (this.#pending !== pending) return;
    this.#pending = undefined;
    this.#clearTimer();
    pending.resolve(response);
    if (this.#isReusable && !this.socket.destroyed) {
      this.#armIdle();
      this.#onFree(this); // not reused before the reads in flight are seen: see OriginClient.#release
    } else this.socket.destroy();
  }

  #fail(error: unknown): void {
    this.#isReusable = false;
    const pending = this.#pending;
    if (pending) {
      this.#pending = undefined;
      this.#clearTimer();
      pending.reject(error);
    }
    this.socket.destroy();
  }

  #touchBodyTimer(): void {
    if (this.#isBodyTimer && this.#timer !== undefined) this.#timer.refresh();
    else {
      this.#armTimer(this.#options.bodyTimeoutMs, "the origin stalled while sending the body");
      this.#isBodyTimer = true;
    }
  }

  #armTimer(ms: number, message: string): void {
    this.#clearTimer();
    this.#timer = setTimeout(() => this.#fail(new ProxyError("ORIGIN_TIMEOUT", message)), ms);
    this.#timer.unref();
  }

  #armIdle(): void {
    this.#clearTimer();
    this.#timer = setTimeout(() => this.close(), Math.max(0, this.#keepAliveMs));
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#isBodyTimer = false;
  }
}

function originFailure(error: NodeJS.ErrnoException): ProxyError {
  const detail = typeof error.code === "string" ? ` (${error.code})` : "";
  return new ProxyError("ORIGIN_FAILED", `the origin could not be reached or broke the connection${detail}`, {
    cause: error,
  });
}

/** Keep-alive pool of OriginConnections to one origin, at most `maxConnections` at once; callers beyond wait. */
export class OriginClient {
  readonly #options: OriginClientOptions;
  readonly #idle: OriginConnection[] = [];
  readonly #all = new Set<OriginConnection>();
  /** Finished their response, not yet idle (see #release). */
  readonly #releasing = new Set<OriginConnection>();
  readonly #waiting: (() => void)[] = [];
  #isClosed = false;

  constructor(options: OriginClientOptions) {
    this.#options = options;
  }

  /**
   * GET `target` (an origin-form request target, already percent-encoded) with extra header lines (each ending in
   * CRLF). A reused connection that the origin closed while idle is retried once on a new one (GET is idempotent).
   */
  async get(
    target: string,
    headers: string,
    maxBytes: number,
    signal: AbortSignal,
    onSize?: SizeListener,
  ): Promise<OriginResponse> {
    if (!REQUEST_TARGET.test(target)) throw new ProxyError("INVALID_PATH", "the origin path has invalid characters");
    for (let attempt = 0; ; attempt++) {
      const connection = await this.#acquire(signal);
      try {
        return await this.#sendOn(connection, target, headers, maxBytes, signal, onSize);
      } catch (error) {
        if (attempt === 0 && connection.isRetryable && !signal.aborted) continue;
        throw error;
      }
    }
  }

  #sendOn(
    connection: OriginConnection,
    target: string,
    headers: string,
    maxBytes: number,
    signal: AbortSignal,
    onSize: SizeListener | undefined,
  ): Promise<OriginResponse> {
    if (signal.aborted) {
      this.#release(connection);
      return Promise.reject(signal.reason as Error);
    }
    const onAbort = (): void => connection.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    return connection
      .send(target, maxBytes, headers, onSize)
      .finally(() => signal.removeEventListener("abort", onAbort));
  }

  async #acquire(signal: AbortSignal): Promise<OriginConnection> {
    for (;;) {
      if (this.#isClosed) throw new ProxyError("ORIGIN_FAILED", "the origin client is closed");
      const idle = this.#idle.pop();
      if (idle) return idle;
      // A connection being released is idle within two loop turns (microseconds): wait for it rather than open
      // another, unless every releasing connection is already promised to an earlier waiter.
      if (this.#all.size < this.#options.maxConnections && this.#waiting.length >= this.#releasing.size) {
        const connection = new OriginConnection(
          this.#options,
          (c) => this.#release(c),
          (c) => this.#forget(c),
        );
        this.#all.add(connection);
        return connection;
      }
      await new Promise<void>((resolve, reject) => {
        const wake = (): void => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const at = this.#waiting.indexOf(wake);
          if (at >= 0) this.#waiting.splice(at, 1);
          reject(signal.reason as Error);
        };
        this.#waiting.push(wake);
        signal.addEventListener("abort", onAbort, { once: true });
      });
    }
  }

  /**
   * A connection finished its response and may be reused, once every byte the origin had already sent has been read.
   *
   * A response can end exactly where a read ends (a Content-Length body fills its buffer, which is all the read may
   * take; a chunked terminator falls on a 64 KiB boundary) with more bytes waiting in the kernel. Handed over at
   * once, the next caller's request is written from the microtasks that run after the read callback, and the read
   * that follows turns those waiting bytes into its response: a response to one path cached under another. So the
   * connection stays out of the pool while the loop reads on: libuv's uv__read reads again right after a read that
   * filled its buffer, but at most 32 times per readable event (loop starvation guard), after which the rest waits
   * for the next poll phase. setImmediate runs after this poll phase; the second one after the next poll phase, where
   * level-triggered epoll reports the socket again if any byte is left. A byte read while no request is pending
   * closes the connection (OriginConnection.#onRead), and a waiter then gets a fresh one.
   *
   *   poll: read (response ends) ─ read ─ … │ check: immediate 1 │ poll: leftover bytes read │ check: immediate 2 → idle
   *
   * Two loop turns cost about 3 µs (measured on an idle loop); sequential GETs over one connection (1 KiB and 3.2 MB
   * bodies, interleaved with the old code) showed no difference beyond this 2-core VM's noise. A caller arriving in
   * the meantime waits for the connection instead of opening another (#acquire).
   *
   * What this cannot catch, nor can any HTTP/1.1 client (undici included): bytes that reach us only after the next
   * request was written (sent later by the origin, or delayed on a real network) are indistinguishable from the
   * answer to it. Only an origin that answers more than it was asked can cause that.
   */
  #release(connection: OriginConnection): void {
    if (connection.socket.destroyed || this.#isClosed) return;
    this.#releasing.add(connection);
    setImmediate(() =>
      setImmediate(() => {
        if (!this.#releasing.delete(connection)) return; // closed meanwhile: #forget woke a waiter
        if (connection.socket.destroyed || this.#isClosed) {
          this.#waiting.shift()?.(); // its 'close' (and #forget) may come later; a woken waiter re-checks
          return;
        }
        this.#idle.push(connection);
        this.#waiting.shift()?.();
      }),
    );
  }

  /** A connection closed: make room for a waiting caller. */
  #forget(connection: OriginConnection): void {
    this.#all.delete(connection);
    this.#releasing.delete(connection);
    const at = this.#idle.indexOf(connection);
    if (at >= 0) this.#idle.splice(at, 1);
    this.#waiting.shift()?.();
  }

  /** Connections open now (tests and stats). */
  get connectionCount(): number {
    return this.#all.size;
  }

  close(): void {
    this.#isClosed = true;
    for (const connection of this.#all) connection.close();
    for (const wake of this.#waiting.splice(0)) wake();
  }
}
