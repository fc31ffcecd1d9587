import { createRequire } from "node:module";

/**
 * HTTP/1.1 request heads parsed by llhttp, the parser node:http itself runs, in the WebAssembly build undici ships.
 *
 * Why llhttp: request parsing is where smuggling lives (Content-Length beside Transfer-Encoding, obs-fold, bare CR or
 * LF, bad tokens). llhttp in its default strict mode refuses all of those as node:http does; a parser of our own would
 * have to earn that trust. The WebAssembly build parses wrk's request in ~0.8 µs and an 8-header browser request in
 * ~1.5 µs here. It is reached by a deep import (undici is pinned in package.json), so a missing file fails at start-up.
 *
 * This server never reads request bodies: the parser pauses at the end of every head, the connection answers, and a
 * request that announced a body is answered and the connection closed, never resumed (see connection.ts).
 */

const require = createRequire(import.meta.url);

interface LlhttpConstants {
  readonly ERROR: Readonly<Record<string, number>>;
  readonly METHODS: Readonly<Record<string, number>>;
  readonly TYPE: { readonly REQUEST: number };
}
const constants = require("undici/lib/llhttp/constants.js") as LlhttpConstants;

/** The slice of the WebAssembly API used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  readonly Module: new (bytes: Buffer) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: unknown };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface Llhttp {
  readonly memory: { readonly buffer: ArrayBuffer };
  llhttp_alloc(type: number): number;
  llhttp_free(ptr: number): void;
  malloc(size: number): number;
  free(ptr: number): void;
  llhttp_execute(ptr: number, data: number, length: number): number;
  llhttp_resume(ptr: number): void;
  llhttp_get_error_pos(ptr: number): number;
  llhttp_get_method(ptr: number): number;
  llhttp_get_http_major(ptr: number): number;
  llhttp_get_http_minor(ptr: number): number;
}

/** Largest request target (414 beyond): image URLs are short; megabyte URLs are an attack. */
export const MAX_URL_LENGTH = 8192;
/** Largest request head, counting the target, names and values (431 beyond), as node:http's maxHeaderSize. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** Most header lines in one request (431 beyond); browsers send ~15. */
export const MAX_HEADER_COUNT = 1000;

const PAUSED = constants.ERROR.PAUSED!;
const OK = constants.ERROR.OK!;
const ERROR_NAMES = new Map(Object.entries(constants.ERROR).map(([name, code]) => [code, `HPE_${name}`]));
const METHOD_NAMES = new Map(Object.entries(constants.METHODS).map(([name, code]) => [code, name]));

/** A Transfer-Encoding list whose last coding is chunked (codings are case-insensitive; llhttp has checked the tokens). */
const FINAL_CHUNKED = /(?:^|,)[ \t]*chunked[ \t]*$/i;

/** Header names whose duplicates are dropped (the first wins), as node:http does; the rest are joined with ", ". */
const SINGLE_VALUED: ReadonlySet<string> = new Set([
  "age",
  "authorization",
  "content-length",
  "content-type",
  "etag",
  "expires",
  "from",
  "host",
  "if-modified-since",
  "if-unmodified-since",
  "last-modified",
  "location",
  "max-forwards",
  "proxy-authorization",
  "referer",
  "retry-after",
  "server",
  "user-agent",
]);

/**
 * Request headers by lower-case name. A plain object, as node:http's `req.headers`: a null-prototype one is a
 * dictionary-mode object in V8 and made every request's head 0.6 µs dearer to parse (1.7 against 1.05 µs for wrk's
 * request, bench/micro/request-parser.bench.ts). Names that exist on Object.prototype (`__proto__`, `constructor`...)
 * are dropped when parsed, so no request can shadow or reach them; read only header names, never inherited ones.
 */
export type RequestHeaders = Readonly<Record<string, string | undefined>>;

/** A complete request head. */
export interface RequestHead {
  readonly method: string;
  readonly url: string;
  readonly headers: RequestHeaders;
  /** The client may send another request on this connection after this one (HTTP/1.1 default, 1.0 keep-alive). */
  readonly isKeepAlive: boolean;
  /** A body follows the head (Content-Length > 0 or Transfer-Encoding): this server reads none, so it closes after. */
  readonly hasBody: boolean;
  /** An Upgrade or CONNECT request: answered like any other, then the connection closes. */
  readonly isUpgrade: boolean;
}

/** What one call to `feed` found. */
export type ParseResult =
  | { readonly kind: "more" } // every byte consumed; the head (if one was started) needs more
  | { readonly kind: "head"; readonly head: RequestHead; readonly rest: Buffer } // `rest`: bytes after the head
  | { readonly kind: "error"; readonly status: 400 | 414 | 431; readonly code: string };

const MORE: ParseResult = { kind: "more" };

let llhttp: Llhttp | undefined;
/** The parser running `llhttp_execute` now (the callbacks are per module, not per parser), and its input. */
let current: RequestParser | undefined;
let currentChunk: Buffer = Buffer.alloc(0);
let bufferPtr = 0;
let bufferSize = 0;

function instance(): Llhttp {
  if (llhttp) return llhttp;
  let module: object;
  try {
    module = new wasmApi.Module(require("undici/lib/llhttp/llhttp_simd-wasm.js") as Buffer);
  } catch {
    module = new wasmApi.Module(require("undici/lib/llhttp/llhttp-wasm.js") as Buffer); // no WebAssembly SIMD
  }
  const text = (at: number, length: number): string => {
    const start = at - bufferPtr;
    return currentChunk.toString("latin1", start, start + length);
  };
  const env = {
    wasm_on_message_begin: (): number => current!.onMessageBegin(),
    wasm_on_url: (_p: number, at: number, length: number): number => current!.onUrl(text(at, length), length),
    wasm_on_header_field: (_p: number, at: number, length: number): number =>
      current!.onHeaderField(text(at, length), length),
    wasm_on_header_value: (_p: number, at: number, length: number): number =>
      current!.onHeaderValue(text(at, length), length),
    wasm_on_headers_complete: (p: number, _status: number, upgrade: number, keepAlive: number): number =>
      current!.onHeadersComplete(p, upgrade === 1, keepAlive === 1),
    wasm_on_message_complete: (): number => 0,
    wasm_on_status: (): number => 0,
    wasm_on_body: (): number => 0, // never reached: the parser is not resumed after a head that announced a body
  };
  const created = new wasmApi.Instance(module, { env }).exports as Llhttp & { _initialize(): void };
  created._initialize();
  llhttp = created;
  return created;
}

/** Bytes of WebAssembly memory llhttp holds (it grows, never shrinks): a leak of parsers would show here. */
export function parserMemoryBytes(): number {
  return instance().memory.buffer.byteLength;
}

/** One connection's parser: `feed` it bytes; it stops at the end of each request head. */
export class RequestParser {
  readonly #ptr: number;
  #url = "";
  #names: string[] = [];
  #values: string[] = [];
  #isInValue = false;
  #headBytes = 0;
  #head: RequestHead | undefined;
  #error: { status: 400 | 414 | 431; code: string } | undefined;
  /** A request head has begun and not yet ended: the connection's header timeout runs. */
  isInHead = false;

  constructor() {
    this.#ptr = instance().llhttp_alloc(constants.TYPE.REQUEST);
  }

  /** Parses `chunk` up to the end of the next request head. After a "head", call it again with `rest` to go on. */
  feed(chunk: Buffer): ParseResult {
    const wasm = instance();
    if (chunk.length > bufferSize) {
      if (bufferPtr !== 0) wasm.free(bufferPtr);
      bufferSize = Math.ceil(chunk.length / 4096) * 4096;
      bufferPtr = wasm.malloc(bufferSize);
    }
    new Uint8Array(wasm.memory.buffer, bufferPtr, chunk.length).set(chunk);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- llhttp's callbacks are per module: they reach the running parser through `current`
    current = this;
    currentChunk = chunk;
    let code: number;
    try {
      code = wasm.llhttp_execute(this.#ptr, bufferPtr, chunk.length);
    } finally {
      current = undefined;
    }
    if (code === OK) return MORE;
    if (code === PAUSED && this.#head) {
      const head = this.#head;
      this.#head = undefined;
      wasm.llhttp_resume(this.#ptr);
      return { kind: "head", head, rest: chunk.subarray(wasm.llhttp_get_error_pos(this.#ptr) - bufferPtr) };
    }
    if (this.#error) return { kind: "error", ...this.#error };
    return { kind: "error", status: 400, code: ERROR_NAMES.get(code) ?? "HPE_UNKNOWN" };
  }

  /** Frees the parser's WebAssembly memory; the parser is unusable after. */
  destroy(): void {
    instance().llhttp_free(this.#ptr);
  }

  onMessageBegin(): number {
    this.#url = "";
    this.#names = [];
    this.#values = [];
    this.#isInValue = false;
    this.#headBytes = 0;
    this.isInHead = true;
    return 0;
  }

  onUrl(text: string, length: number): number {
    this.#url += text;
    this.#headBytes += length;
    if (this.#url.length > MAX_URL_LENGTH) return this.#fail(414, "URI_TOO_LONG");
    return this.#headBytes > MAX_HEADER_BYTES ? this.#fail(431, "HEADERS_TOO_LARGE") : 0;
  }

  onHeaderField(text: string, length: number): number {
    if (this.#isInValue || this.#names.length === 0) {
      if (this.#names.length === MAX_HEADER_COUNT) return this.#fail(431, "HEADERS_TOO_LARGE");
      this.#names.push(text);
      this.#values.push("");
      this.#isInValue = false;
    } else this.#names[this.#names.length - 1] += text; // the name went on in the next chunk
    this.#headBytes += length;
    return this.#headBytes > MAX_HEADER_BYTES ? this.#fail(431, "HEADERS_TOO_LARGE") : 0;
  }

  onHeaderValue(text: string, length: number): number {
    this.#isInValue = true;
    this.#values[this.#values.length - 1] += text;
    this.#headBytes += length;
    return this.#headBytes > MAX_HEADER_BYTES ? this.#fail(431, "HEADERS_TOO_LARGE") : 0;
  }

  onHeadersComplete(ptr: number, isUpgrade: boolean, isKeepAlive: boolean): number {
    const wasm = instance();
    const headers: Record<string, string> = {};
    const names = this.#names;
    const values = this.#values;
    let hosts = 0;
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!.toLowerCase(); // i < length
      if (name in Object.prototype) continue; // __proto__, constructor, toString...: never a real header
      const value = values[i]!;
      const seen = headers[name];
      if (name === "host") hosts++;
      if (seen === undefined) headers[name] = value;
      else if (!SINGLE_VALUED.has(name)) headers[name] = `${seen}${name === "cookie" ? "; " : ", "}${value}`;
    }
    // RFC 9112 §3.2: an HTTP/1.1 request without a Host, or with more than one, is answered 400.
    const isHttp11 = wasm.llhttp_get_http_major(ptr) === 1 && wasm.llhttp_get_http_minor(ptr) === 1;
    if (hosts > 1 || (hosts === 0 && isHttp11)) return this.#fail(400, hosts > 1 ? "HOST_REPEATED" : "HOST_MISSING");
    // RFC 9112 §6.3: a request whose final transfer coding is not chunked has no knowable length: 400, then close.
    // llhttp finds that only after this callback returns, which is too late: the head is dispatched by then.
    const codings = headers["transfer-encoding"];
    if (codings !== undefined && !FINAL_CHUNKED.test(codings)) return this.#fail(400, "HPE_INVALID_TRANSFER_ENCODING");
    const contentLength = headers["content-length"];
    this.isInHead = false;
    this.#head = {
      method: METHOD_NAMES.get(wasm.llhttp_get_method(ptr)) ?? "",
      url: this.#url,
      headers,
      isKeepAlive,
      hasBody: (contentLength !== undefined && contentLength !== "0") || headers["transfer-encoding"] !== undefined,
      isUpgrade,
    };
    return PAUSED;
  }

  #fail(status: 400 | 414 | 431, code: string): number {
    this.#error = { status, code };
    return -1;
  }
}
