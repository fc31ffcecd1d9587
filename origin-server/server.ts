import { open, realpath } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { createServer } from "node:http";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { basename, join, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { parseByteRange } from "./byte-range.ts";
import { ImageIndex } from "./image-index.ts";
import { imageContentType, isImageFileName } from "./image-files.ts";
import { parseRequestPath } from "./request-path.ts";

export interface OriginServerOptions {
  dir: string;
  port: number;
  host: string;
  /** Simulated distance: delay before the first byte of every response. */
  latencyMs: number;
  /** Simulated link speed for each response body; 0 = unlimited. */
  bandwidthBytesPerSecond: number;
}

export interface RunningOrigin {
  /** e.g. "http://127.0.0.1:8081/" */
  url: string;
  port: number;
  /** Requests whose path names an image file (served, 304, 404 or refused alike); /index.json is not counted. */
  requestCount(): number;
  /** Stops listening and drops open connections, including responses still streaming. */
  close(): Promise<void>;
}

/** Same codes as the proxy's, so logs read alike; the origin keeps its own table because it imports nothing from src/. */
const STATUS = {
  INVALID_PATH: 400,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  RANGE_NOT_SATISFIABLE: 416,
  INTERNAL: 500,
} as const;
type OriginErrorCode = keyof typeof STATUS;

/** Pacing granularity of a throttled body: a chunk every ~50 ms, between 1 KiB and 64 KiB. */
const PACING_INTERVAL_MS = 50;
/** Read size for file bodies (see serveFile). */
const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * A small static origin for development, tests and benchmarks: GET/HEAD of image files under `dir` with validators,
 * conditional requests and single byte ranges (RFC 9110 §13, §14), /index.json listing every image, and optional
 * simulated latency and bandwidth. Nothing else is served: directories, hidden files and non-images are 404, and a
 * symlink resolving outside the root is 403.
 */
export async function startOriginServer(options: OriginServerOptions): Promise<RunningOrigin> {
  const root = await realpath(options.dir);
  const index = new ImageIndex(root);
  let imageRequests = 0;

  const server = createServer((req, res) => {
    const aborted = new AbortController();
    res.on("close", () => aborted.abort());
    const context: RequestContext = {
      root,
      index,
      options,
      signal: aborted.signal,
      countImageRequest: () => void imageRequests++,
    };
    handleRequest(req, res, context).catch((error: unknown) => {
      if (aborted.signal.aborted) return; // the client went away: nothing to answer
      if (!res.headersSent) sendError(req, res, "INTERNAL", error instanceof Error ? error.message : String(error));
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port; // listening on TCP, so address() is an AddressInfo

  return {
    url: `http://${urlHost(options.host)}:${port}/`,
    port,
    requestCount: () => imageRequests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

interface RequestContext {
  readonly root: string;
  readonly index: ImageIndex;
  readonly options: OriginServerOptions;
  /** Aborts when the response closes, finished or not. */
  readonly signal: AbortSignal;
  readonly countImageRequest: () => void;
}

async function handleRequest(req: IncomingMessage, res: ServerResponse, context: RequestContext): Promise<void> {
  const parsed = parseRequestPath(req.url ?? "");
  const name = parsed.ok ? parsed.segments[parsed.segments.length - 1] : undefined;
  const isIndex = parsed.ok && parsed.segments.length === 1 && name === "index.json";
  if (name !== undefined && imageContentType(name) !== undefined) context.countImageRequest();

  if (context.options.latencyMs > 0) await sleep(context.options.latencyMs, undefined, { signal: context.signal });

  if (req.method !== "GET" && req.method !== "HEAD") {
    return sendError(req, res, "METHOD_NOT_ALLOWED", "only GET and HEAD are supported", { Allow: "GET, HEAD" });
  }
  if (!parsed.ok) return sendError(req, res, parsed.code, parsed.message);
  if (isIndex) return sendIndex(req, res, context);
  if (name === undefined || !isImageFileName(name))
    return sendError(req, res, "NOT_FOUND", "only image files are served");

  let real: string;
  try {
    real = await realpath(join(context.root, ...parsed.segments));
  } catch (error) {
    if (errorCode(error) === "EACCES") return sendError(req, res, "FORBIDDEN", "permission denied");
    return sendError(req, res, "NOT_FOUND", "no such image");
  }
  // Symlinks are followed only while they stay inside the root, and must land on an image file name too.
  if (!real.startsWith(context.root.endsWith(sep) ? context.root : context.root + sep))
    return sendError(req, res, "FORBIDDEN", "the path resolves outside the root");
  if (!isImageFileName(basename(real)))
    return sendError(req, res, "FORBIDDEN", "the path resolves to a file that is not an image");

  let handle: FileHandle;
  try {
    handle = await open(real, "r");
  } catch (error) {
    const code = errorCode(error);
    if (code === "EACCES" || code === "EPERM") return sendError(req, res, "FORBIDDEN", "permission denied");
    return sendError(req, res, "NOT_FOUND", "no such image");
  }
  let isStreaming = false;
  try {
    // Stat the open descriptor, not the path, so the validators describe exactly the bytes we send.
    const stats = await handle.stat({ bigint: true });
    if (!stats.isFile()) return sendError(req, res, "NOT_FOUND", "directories are not listed; see /index.json");
    const size = Number(stats.size);
    const lastModified = new Date(Number(stats.mtimeMs)).toUTCString();
    const headers: OutgoingHttpHeaders = {
      "Content-Type": imageContentType(real) ?? "application/octet-stream",
      ETag: `"${stats.size.toString(16)}-${stats.mtimeNs.toString(16)}"`,
      "Last-Modified": lastModified,
      "Accept-Ranges": "bytes",
    };
    const etag = headers.ETag as string;

    if (isNotModified(req, etag, Number(stats.mtimeMs))) {
      res.writeHead(304, { ETag: etag, "Last-Modified": lastModified, "Accept-Ranges": "bytes" });
      res.end();
      return;
    }

    // Range applies to GET only (RFC 9110 §14.2); If-Range falls back to the whole body when the validator changed.
    const rangeHeader = req.method === "GET" && isIfRangeFresh(req, etag, lastModified) ? req.headers.range : undefined;
    const range = parseByteRange(rangeHeader, size);
    if (range.kind === "unsatisfiable") {
      return sendError(req, res, "RANGE_NOT_SATISFIABLE", `the range is outside the ${size}-byte body`, {
        "Content-Range": `bytes */${size}`,
        "Accept-Ranges": "bytes",
      });
    }
    const start = range.kind === "partial" ? range.start : 0;
    const end = range.kind === "partial" ? range.end : size - 1;
    if (range.kind === "partial") headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
    headers["Content-Length"] = end - start + 1;
    res.writeHead(range.kind === "partial" ? 206 : 200, headers);
    if (req.method === "HEAD" || size === 0) {
      res.end();
      return;
    }

    isStreaming = true; // the read stream owns the handle now and closes it (autoClose)
    // 1 MiB reads: originals are megabytes, and the default 64 KiB chunks made a 3 MB file take ~11 ms on loopback
    // (46 thread-pool reads and socket writes); 1 MiB chunks take ~5 ms.
    const body = handle.createReadStream({ start, end, highWaterMark: READ_CHUNK_BYTES });
    const bandwidth = context.options.bandwidthBytesPerSecond;
    try {
      if (bandwidth > 0) await pipeline(body, throttle(bandwidth), res);
      else await pipeline(body, res);
    } catch (error) {
      if (!context.signal.aborted) throw error; // a client abort is normal; the pipeline already destroyed the stream
    }
  } finally {
    if (!isStreaming) await handle.close();
  }
}

async function sendIndex(req: IncomingMessage, res: ServerResponse, context: RequestContext): Promise<void> {
  const document = await context.index.get();
  const headers = { ETag: document.etag, "Cache-Control": "no-cache" };
  if (matchesEtag(req.headers["if-none-match"], document.etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, {
    ...headers,
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": document.body.length,
  });
  res.end(req.method === "HEAD" ? undefined : document.body);
}

/** RFC 9110 §13.2.2: If-None-Match (weak comparison) wins; If-Modified-Since counts only without it. */
function isNotModified(req: IncomingMessage, etag: string, mtimeMs: number): boolean {
  const ifNoneMatch = req.headers["if-none-match"];
  if (ifNoneMatch !== undefined) return matchesEtag(ifNoneMatch, etag);
  const ifModifiedSince = req.headers["if-modified-since"];
  if (ifModifiedSince === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  // HTTP dates have whole seconds, so compare the file's mtime truncated to the second.
  return !Number.isNaN(since) && Math.floor(mtimeMs / 1000) * 1000 <= since;
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const weak = (tag: string) => tag.trim().replace(/^W\//, "");
  return header.split(",").some((tag) => tag.trim() === "*" || weak(tag) === weak(etag));
}

/** RFC 9110 §13.1.5: If-Range needs a strong match of the ETag, or exactly the Last-Modified date. */
function isIfRangeFresh(req: IncomingMessage, etag: string, lastModified: string): boolean {
  const ifRange: unknown = req.headers["if-range"];
  if (typeof ifRange !== "string") return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith("W/")) return value === etag;
  return value === lastModified;
}

/** Paces a body at `bytesPerSecond`: each chunk leaves when the bytes before it would have arrived at that speed. */
function throttle(bytesPerSecond: number) {
  const chunkBytes = Math.max(1024, Math.min(64 * 1024, Math.floor((bytesPerSecond * PACING_INTERVAL_MS) / 1000)));
  // stream.pipeline passes { signal } to generator stages (Node >= 16); @types/node 20 does not declare it.
  return async function* (source: AsyncIterable<Buffer>, options?: { signal?: AbortSignal }) {
    const signal = options?.signal;
    const startedMs = performance.now();
    let sentBytes = 0;
    for await (const chunk of source) {
      for (let offset = 0; offset < chunk.length; offset += chunkBytes) {
        const piece = chunk.subarray(offset, offset + chunkBytes);
        sentBytes += piece.length;
        const waitMs = startedMs + (sentBytes / bytesPerSecond) * 1000 - performance.now();
        if (waitMs > 0) await sleep(waitMs, undefined, signal ? { signal } : {});
        yield piece;
      }
    }
  };
}

function sendError(
  req: IncomingMessage,
  res: ServerResponse,
  code: OriginErrorCode,
  message: string,
  extraHeaders: OutgoingHttpHeaders = {},
): void {
  const body = Buffer.from(JSON.stringify({ error: code, message }));
  res.writeHead(STATUS[code], {
    ...extraHeaders,
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": body.length,
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

function errorCode(error: unknown): string | undefined {
  return error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined;
}

/** The host to put in `url`: wildcard binds are reached on loopback, and IPv6 literals need brackets. */
function urlHost(host: string): string {
  if (host === "" || host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}
