import type { Socket } from "node:net";
import { ProxyError } from "../../errors.ts";
import type { ErrorCode } from "../../errors.ts";
import { Reply } from "./reply.ts";
import type { HttpRequest, ReplySink } from "./reply.ts";
import { RequestParser } from "./request-parser.ts";
import type { RequestHead } from "./request-parser.ts";

/** Answers one request; must not throw (the server's handler catches its own errors). */
export type RequestHandler = (req: HttpRequest, res: Reply) => void;

/**
 * Answers a request refused before any route saw it (`error` is BAD_REQUEST, REQUEST_TIMEOUT, URI_TOO_LONG or
 * HEADERS_TOO_LARGE), before returning: the connection closes after the reply, and at once if there is none.
 */
export type RefusalHandler = (res: Reply, error: ProxyError) => void;

export interface ConnectionOptions {
  readonly handler: RequestHandler;
  readonly onRefusedRequest: RefusalHandler;
  /** `keep-alive: timeout=N\r\n`, or "" when idle connections are never timed out. */
  readonly keepAliveLine: string;
  readonly maxRequestsPerSocket: number;
  /** How long a closing connection may keep sending before it is cut. */
  readonly lingerMs: number;
  readonly isShuttingDown: () => boolean;
}

/** The timeouts the server's sweep applies. */
export interface ConnectionTimeouts {
  readonly headersTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly sendTimeoutMs: number;
}

/*
 * One client connection, one request at a time:
 *
 *   IDLE --bytes--> HEAD --head parsed--> BUSY --reply done--> IDLE (or CLOSING)
 *                     \--bad bytes / timeout--> CLOSING (400/408/414/431 sent)
 *   BUSY/DRAINING: bytes that arrive are kept (the socket paused) and parsed after the reply, so pipelined requests are
 *   answered in order; DRAINING waits for a full socket to drain before the next request is read (memory stays at
 *   one reply per connection however fast a client pipelines). CLOSING: our FIN is sent; what the client still sends
 *   is read and dropped until it closes or the linger time ends (a close with unread input would be a reset, which
 *   can make the client lose the reply).
 */
const IDLE = 0;
const HEAD = 1;
const BUSY = 2;
const DRAINING = 3;
const CLOSING = 4;
type State = typeof IDLE | typeof HEAD | typeof BUSY | typeof DRAINING | typeof CLOSING;

/** Bytes read and dropped from a closing connection before it is cut. */
const MAX_LINGER_BYTES = 1024 * 1024;

/** The refusals, by the status the parser or the header timeout gives: their code and message. */
const REFUSALS: Readonly<Record<400 | 408 | 414 | 431, { readonly code: ErrorCode; readonly message: string }>> = {
  400: { code: "BAD_REQUEST", message: "the request is not valid HTTP/1.1" },
  408: { code: "REQUEST_TIMEOUT", message: "the request headers did not arrive in time" },
  414: { code: "URI_TOO_LONG", message: "the URL is too long" },
  431: { code: "HEADERS_TOO_LARGE", message: "the request headers are too large" },
};

/** What a refused request looks like to the refusal handler: nothing of it can be trusted, so nothing of it is kept. */
const REFUSED_REQUEST = { method: "", url: "", headers: {}, hasBody: false } as const;

export class Connection implements ReplySink {
  readonly socket: Socket;
  readonly keepAliveLine: string;
  readonly #options: ConnectionOptions;
  /** The peer's client key, worked out once for the connection's every request. */
  readonly clientKey: string;
  readonly #parser = new RequestParser();
  #state: State = IDLE;
  /** When the state began (ms): the header, idle and linger timeouts count from it. */
  #sinceMs = Date.now();
  /** Bytes received while a reply was in progress, parsed after it. */
  #pending: Buffer | undefined;
  #head: RequestHead | undefined;
  #served = 0;
  #lingerBytes = 0;
  /** The socket's unsent bytes at the last sweep, and since when they have not changed (a reader that stopped). */
  #unsentBytes = 0;
  #unsentSinceMs = 0;
  #isParsing = false;
  #hasPeerEnded = false;
  #isClosed = false;

  constructor(socket: Socket, clientKey: string, options: ConnectionOptions) {
    this.socket = socket;
    this.#options = options;
    this.keepAliveLine = options.keepAliveLine;
    this.clientKey = clientKey;
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("end", () => this.#onEnd());
    socket.on("error", () => {}); // resets and the like: "close" follows
    socket.once("close", () => {
      this.#isClosed = true;
      this.#parser.destroy();
    });
  }

  /** Between requests with nothing left to send: safe to close (shutdown closes these at once). */
  get isIdle(): boolean {
    return this.#state === IDLE && this.socket.writableLength === 0;
  }

  /**
   * Called by the server's sweep: applies the header, idle, send and linger timeouts. A connection that has sent
   * nothing yet gets the header timeout even when idle connections are never timed out (keep-alive timeout 0): an open
   * socket that never speaks must not hold a connection slot for ever. Idle time only counts once the last reply has
   * left the process: a slow reader of a 3 MB reply is sending, not idle. A reply whose unsent bytes stay the same for
   * the send timeout (the client stopped reading) is cut, as nginx's send_timeout does, so slow readers cannot pin
   * buffers and connections for ever. Node shows no progress inside one large write, so a single reply must leave
   * within the send timeout: 60 s by default, 50 KB/s for a 3 MB image.
   */
  checkTimeouts(nowMs: number, timeouts: ConnectionTimeouts): void {
    const unsent = this.socket.writableLength;
    if (unsent !== this.#unsentBytes) {
      this.#unsentBytes = unsent;
      this.#unsentSinceMs = nowMs;
    }
    const state = this.#state;
    if (unsent > 0) {
      if (nowMs - this.#unsentSinceMs > timeouts.sendTimeoutMs) return void this.socket.destroy();
      if (state === IDLE) this.#sinceMs = nowMs; // idle starts when the reply has left
    }
    const elapsedMs = nowMs - this.#sinceMs;
    if (state === HEAD && elapsedMs > timeouts.headersTimeoutMs) this.#refuse(408);
    else if (state === IDLE && this.#served === 0 && elapsedMs > timeouts.headersTimeoutMs) this.socket.destroy();
    else if (state === IDLE && timeouts.keepAliveTimeoutMs > 0 && elapsedMs > timeouts.keepAliveTimeoutMs) {
      this.socket.destroy();
    } else if (state === CLOSING && elapsedMs > this.#options.lingerMs) this.socket.destroy();
  }

  // ReplySink

  isClosingAfter(): boolean {
    const head = this.#head;
    return (
      head === undefined ||
      !head.isKeepAlive ||
      head.hasBody ||
      head.isUpgrade ||
      this.#served + 1 >= this.#options.maxRequestsPerSocket ||
      this.#options.isShuttingDown() ||
      (this.#hasPeerEnded && this.#pending === undefined)
    );
  }

  onReplyDone(shouldClose: boolean): void {
    this.#served++;
    if (shouldClose || this.#isClosed) return this.#closeGracefully();
    this.#state = IDLE;
    this.#sinceMs = Date.now();
    if (!this.#isParsing) this.#continue();
  }

  // Reading

  #onData(chunk: Buffer): void {
    try {
      this.#read(chunk);
    } catch {
      this.socket.destroy(); // a bug of ours while parsing: this connection's state can't be trusted, the process can
    }
  }

  #read(chunk: Buffer): void {
    const state = this.#state;
    if (state === CLOSING) {
      this.#lingerBytes += chunk.length;
      if (this.#lingerBytes > MAX_LINGER_BYTES) this.socket.destroy();
      return;
    }
    if (state === BUSY || state === DRAINING) return this.#keep(chunk);
    if (this.socket.writableNeedDrain) {
      this.#keep(chunk);
      return this.#drainThenContinue();
    }
    if (state === IDLE && !this.#parser.isInHead) this.#sinceMs = Date.now(); // the header timeout starts with the first byte
    this.#parse(chunk);
  }

  #onEnd(): void {
    this.#hasPeerEnded = true;
    if (this.#state === IDLE || this.#state === HEAD) this.#closeGracefully();
  }

  /** Keeps bytes that arrived during a reply (the socket pauses: at most a chunk or two are ever kept). */
  #keep(chunk: Buffer): void {
    this.#pending = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
    this.socket.pause();
  }

  #parse(chunk: Buffer): void {
    let input = chunk;
    this.#isParsing = true;
    try {
      for (;;) {
        const result = this.#parser.feed(input);
        if (result.kind === "more") {
          this.#state = this.#parser.isInHead ? HEAD : IDLE;
          if (this.#hasPeerEnded) this.#closeGracefully();
          return;
        }
        if (result.kind === "error") return this.#refuse(result.status, result.code);
        this.#state = BUSY;
        this.#head = result.head;
        this.#dispatch(result.head);
        const state = this.#state as State; // the handler may have replied (and moved on) already
        if (state === CLOSING) return;
        if (result.rest.length === 0) return;
        if (state === BUSY) return this.#keep(result.rest);
        if (this.socket.writableNeedDrain) {
          this.#keep(result.rest);
          return this.#drainThenContinue();
        }
        input = result.rest; // a pipelined request right behind the one just answered
      }
    } finally {
      this.#isParsing = false;
    }
  }

  #dispatch(head: RequestHead): void {
    const req: HttpRequest = {
      method: head.method,
      url: head.url,
      headers: head.headers,
      hasBody: head.hasBody,
      socket: this.socket,
      clientKey: this.clientKey,
    };
    const reply = new Reply(req, this);
    try {
      this.#options.handler(req, reply);
    } catch {
      reply.destroy();
    }
  }

  /** After a reply: waits for a full socket to drain, then parses what arrived meanwhile. */
  #continue(): void {
    if (this.#isClosed) return;
    if (this.socket.writableNeedDrain) return this.#drainThenContinue();
    const pending = this.#pending;
    if (pending === undefined) {
      this.socket.resume();
      if (this.#hasPeerEnded) this.#closeGracefully();
      return;
    }
    this.#pending = undefined;
    if (!this.#parser.isInHead) this.#sinceMs = Date.now(); // a head begun before keeps its header timeout
    this.socket.resume();
    this.#parse(pending);
  }

  #drainThenContinue(): void {
    this.#state = DRAINING;
    this.socket.pause();
    this.socket.once("drain", () => {
      this.#state = this.#parser.isInHead ? HEAD : IDLE;
      this.#continue();
    });
  }

  /**
   * Answers a request that cannot be parsed (or came too slowly) through the refusal handler, then closes: the stream
   * can't be trusted after. `reason` is the parser's (an llhttp error name, HOST_MISSING...), told in a 400's message.
   */
  #refuse(status: 400 | 408 | 414 | 431, reason?: string): void {
    const { code, message } = REFUSALS[status];
    this.#head = undefined; // no head: isClosingAfter() is true, so the reply says connection: close and we close
    this.#pending = undefined;
    this.#state = BUSY;
    const reply = new Reply({ ...REFUSED_REQUEST, socket: this.socket, clientKey: this.clientKey }, this);
    try {
      this.#options.onRefusedRequest(reply, new ProxyError(code, status === 400 ? `${message} (${reason})` : message));
    } catch {
      // a bug in the handler: the connection is cut below, as #dispatch does
    }
    if (!reply.isDone) reply.destroy();
  }

  /** Sends our FIN after what is queued, then reads and drops input until the client closes (or the linger ends). */
  #closeGracefully(): void {
    if (this.#state === CLOSING) return;
    this.#state = CLOSING;
    this.#sinceMs = Date.now();
    this.#pending = undefined;
    this.socket.end();
    this.socket.resume();
  }
}
