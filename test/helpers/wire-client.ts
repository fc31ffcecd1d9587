import { connect } from "node:net";
import type { Socket } from "node:net";

/**
 * A client on a raw socket, for what fetch() cannot do: pipelining, malformed requests, watching the server close.
 * Every wait is bounded by WAIT_MS.
 */
const WAIT_MS = 3000;
const openClients: WireClient[] = [];

/** Destroys every client opened since the last call (for afterEach). */
export function destroyWireClients(): void {
  for (const client of openClients.splice(0)) client.destroy();
}

export interface WireResponse {
  readonly status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** One raw connection: requests go out as written bytes; responses come back split by their own framing. */
export class WireClient {
  readonly #socket: Socket;
  /** Unread bytes as received; joined only when a response could be complete (large bodies stay linear). */
  #chunks: Buffer[] = [];
  #length = 0;
  #isEnded = false;
  #notify: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#length += chunk.length;
      this.#notify?.();
    });
    const end = (): void => {
      this.#isEnded = true;
      this.#notify?.();
    };
    socket.on("end", end);
    socket.on("close", end);
    socket.on("error", end); // ECONNRESET, EPIPE: the server is gone either way
  }

  static open(port: number): Promise<WireClient> {
    const client = new WireClient(connect(port, "127.0.0.1"));
    openClients.push(client);
    return new Promise((resolve, reject) => {
      client.#socket.once("connect", () => resolve(client));
      client.#socket.once("close", () => reject(new Error("could not connect")));
    });
  }

  /** True once the server closed (FIN or reset). */
  get isEnded(): boolean {
    return this.#isEnded;
  }

  /** Bytes received but not yet read as a response. */
  get unread(): Buffer {
    return this.#flat();
  }

  get socket(): Socket {
    return this.#socket;
  }

  write(bytes: string | Buffer): void {
    if (this.#socket.writable) this.#socket.write(typeof bytes === "string" ? Buffer.from(bytes, "latin1") : bytes);
  }

  /** The next response; `method` says whether it has a body (HEAD does not). */
  async read(method = "GET"): Promise<WireResponse> {
    const deadline = Date.now() + WAIT_MS;
    let needBytes = 0;
    for (;;) {
      if (this.#length >= needBytes) {
        const parsed = parseResponse(this.#flat(), method);
        if (parsed && "response" in parsed) {
          const rest = this.#flat().subarray(parsed.size);
          this.#chunks = rest.length > 0 ? [rest] : [];
          this.#length = rest.length;
          return parsed.response;
        }
        needBytes = parsed?.needBytes ?? this.#length + 1;
      }
      if (this.#isEnded) throw new Error(`closed with ${this.#length} bytes of an incomplete response`);
      await this.#change(deadline);
    }
  }

  /** The unread bytes as one buffer. */
  #flat(): Buffer {
    if (this.#chunks.length !== 1) this.#chunks = [Buffer.concat(this.#chunks, this.#length)];
    return this.#chunks[0]!; // just made
  }

  /** Waits until at least `count` unread bytes have arrived. */
  async received(count: number): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (this.#length < count) {
      if (this.#isEnded) throw new Error(`closed after ${this.#length} of ${count} bytes`);
      await this.#change(deadline);
    }
  }

  /** Waits until the server closes; resolves with the milliseconds that took. */
  async closed(timeoutMs = WAIT_MS): Promise<number> {
    const started = Date.now();
    while (!this.#isEnded) await this.#change(started + timeoutMs);
    return Date.now() - started;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #change(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#notify = undefined;
        reject(new Error(`nothing from the server in time (${this.#length} bytes unread)`));
      }, deadline - Date.now());
      this.#notify = () => {
        clearTimeout(timer);
        this.#notify = undefined;
        resolve();
      };
    });
  }
}

/**
 * One response from the front of `buffer`; while it is incomplete, how many bytes it needs when the head tells, or
 * undefined.
 */
function parseResponse(
  buffer: Buffer,
  method: string,
): { response: WireResponse; size: number } | { needBytes: number } | undefined {
  const headEnd = buffer.indexOf("\r\n\r\n");
  if (headEnd < 0) return undefined;
  const [statusLine = "", ...lines] = buffer.subarray(0, headEnd).toString("latin1").split("\r\n");
  const match = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  if (!match) throw new Error(`not a status line: ${JSON.stringify(statusLine.slice(0, 80))}`);
  const status = Number(match[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const start = headEnd + 4;
  // RFC 9112 §6.3: HEAD, 1xx, 204 and 304 responses end at the head whatever their Content-Length says.
  if (method === "HEAD" || status < 200 || status === 204 || status === 304)
    return { response: { status, headers, body: Buffer.alloc(0) }, size: start };
  if (headers["transfer-encoding"] === "chunked") {
    const chunked = readChunked(buffer, start);
    return chunked && { response: { status, headers, body: chunked.body }, size: chunked.end };
  }
  const length = headers["content-length"];
  if (length === undefined || !/^\d+$/.test(length)) throw new Error(`${status} response without framing`);
  const end = start + Number(length);
  if (buffer.length < end) return { needBytes: end };
  return { response: { status, headers, body: Buffer.from(buffer.subarray(start, end)) }, size: end };
}

/** A chunked body without trailers. */
function readChunked(buffer: Buffer, start: number): { body: Buffer; end: number } | undefined {
  const parts: Buffer[] = [];
  for (let at = start; ;) {
    const lineEnd = buffer.indexOf("\r\n", at);
    if (lineEnd < 0) return undefined;
    const size = parseInt(buffer.subarray(at, lineEnd).toString("latin1"), 16);
    const dataEnd = lineEnd + 2 + size;
    if (buffer.length < dataEnd + 2) return undefined;
    if (size === 0) return { body: Buffer.concat(parts), end: dataEnd + 2 };
    parts.push(buffer.subarray(lineEnd + 2, dataEnd));
    at = dataEnd + 2;
  }
}

export function get(path: string, extraHeaders = "", method = "GET"): string {
  return `${method} ${path} HTTP/1.1\r\nHost: x\r\n${extraHeaders}\r\n`;
}
