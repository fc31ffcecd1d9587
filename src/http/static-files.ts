import { createReadStream } from "node:fs";
import { readFile, realpath, stat } from "node:fs/promises";
import { promisify } from "node:util";
import { brotliCompress, constants as zlib, gzip } from "node:zlib";
import type { HttpRequest, Reply } from "./engine/reply.ts";
import { extname, resolve, sep } from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".webp": "image/webp",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".woff2": "font/woff2",
};

/** Text types worth compressing (images and fonts here are compressed already). */
const COMPRESSIBLE: ReadonlySet<string> = new Set([".html", ".js", ".css", ".json", ".svg", ".txt", ".map"]);
/** Files above this are sent as they are; the built frontend's largest is ~260 KB. */
const MAX_COMPRESSIBLE_BYTES = 4 * 1024 * 1024;
/** Compressed copies kept in memory, in all (the frontend needs ~100 KB); past it, files go out uncompressed. */
const MAX_COMPRESSED_TOTAL_BYTES = 32 * 1024 * 1024;

type Coding = "br" | "gzip";
const brotli = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/** One file's compressed copies, valid while the file keeps its size and modification time. */
interface Compressed {
  readonly mtimeMs: number;
  readonly size: number;
  readonly br: Buffer;
  readonly gzip: Buffer;
}

/**
 * The coding to send for an Accept-Encoding value (RFC 9110 §12.5.3): br, then gzip, when listed (or `*`) with a
 * q-value above 0; undefined for identity.
 */
export function negotiateEncoding(accept: string | undefined): Coding | undefined {
  if (accept === undefined || accept === "") return undefined;
  const q = new Map<string, number>();
  for (const part of accept.split(",")) {
    const [token = "", ...params] = part.split(";");
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    const value = qParam === undefined ? 1 : Number(qParam.slice(2));
    q.set(token.trim().toLowerCase(), Number.isFinite(value) ? value : 0);
  }
  const weight = (coding: Coding): number => q.get(coding) ?? q.get("*") ?? 0;
  if (weight("br") > 0) return "br";
  if (weight("gzip") > 0) return "gzip";
  return undefined;
}

/** Content-Security-Policy of the app shell: everything from this origin, nothing from anywhere else. */
const APP_CSP =
  "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'";

/**
 * Serves the built frontend (web/dist). Paths that name no file fall back to index.html (client-side routes);
 * hashed files under /assets/ are immutable. Only files under the root's real path are ever opened. Text files go out
 * brotli- or gzip-compressed when the client accepts it (the 258 KB bundle is 74 KB as brotli, 80 KB as gzip),
 * compressed once per file version and kept in memory (as nginx's gzip_static, without a build step).
 */
export class StaticFiles {
  readonly #root: string;
  readonly #compressed = new Map<string, Compressed>();
  /** Compressions running, by path: concurrent first requests share one. */
  readonly #compressing = new Map<string, Promise<Compressed | undefined>>();
  #compressedBytes = 0;

  constructor(root: string) {
    this.#root = resolve(root);
  }

  /** Answers the request; false when the root has no such file and no index.html (caller sends 404). */
  async serve(req: HttpRequest, res: Reply, pathname: string): Promise<boolean> {
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname);
    } catch {
      return false;
    }
    if (decoded.includes("\0")) return false;
    const rootReal = await realpath(this.#root).catch(() => undefined);
    if (rootReal === undefined) return false;
    let file = await this.#find(rootReal, decoded === "/" ? "/index.html" : decoded);
    if (file === undefined && extname(decoded) === "") file = await this.#find(rootReal, "/index.html");
    if (file === undefined) return false;
    const isAsset = decoded.startsWith("/assets/");
    const isCompressible = COMPRESSIBLE.has(extname(file.path));
    const coding = isCompressible ? negotiateEncoding(req.headers["accept-encoding"]) : undefined;
    const compressed = coding === undefined ? undefined : (await this.#compressedCopy(file))?.[coding];
    const headers: Record<string, string | number> = {
      "content-type": TYPES[extname(file.path)] ?? "application/octet-stream",
      "content-length": compressed ? compressed.byteLength : file.size,
      "cache-control": isAsset ? "public, max-age=31536000, immutable" : "no-cache",
      "x-content-type-options": "nosniff",
      ...(file.path.endsWith(".html") ? { "content-security-policy": APP_CSP, "x-frame-options": "DENY" } : {}),
      ...(isCompressible ? { vary: "Accept-Encoding" } : {}),
      ...(compressed && coding ? { "content-encoding": coding } : {}),
    };
    res.writeHead(200, headers);
    if (req.method === "HEAD") res.end();
    else if (compressed) res.end(compressed);
    else res.stream(createReadStream(file.path));
    return true;
  }

  /** The file's compressed copies, made on first use; undefined when too large or past the memory budget. */
  async #compressedCopy(file: { path: string; size: number; mtimeMs: number }): Promise<Compressed | undefined> {
    const known = this.#compressed.get(file.path);
    if (known && known.mtimeMs === file.mtimeMs && known.size === file.size) return known;
    if (file.size > MAX_COMPRESSIBLE_BYTES) return undefined;
    let running = this.#compressing.get(file.path);
    if (!running) {
      running = this.#compress(file).finally(() => this.#compressing.delete(file.path));
      this.#compressing.set(file.path, running);
    }
    return running;
  }

  async #compress(file: { path: string; size: number; mtimeMs: number }): Promise<Compressed | undefined> {
    const bytes = await readFile(file.path);
    if (bytes.byteLength !== file.size) return undefined; // changed while being read: next request tries again
    const [br, gz] = await Promise.all([
      brotli(bytes, { params: { [zlib.BROTLI_PARAM_QUALITY]: 9, [zlib.BROTLI_PARAM_SIZE_HINT]: bytes.byteLength } }),
      gzipAsync(bytes, { level: 9 }),
    ]);
    const copy: Compressed = { mtimeMs: file.mtimeMs, size: file.size, br, gzip: gz };
    const previous = this.#compressed.get(file.path);
    const bytesAfter =
      this.#compressedBytes -
      (previous ? previous.br.byteLength + previous.gzip.byteLength : 0) +
      br.byteLength +
      gz.byteLength;
    if (bytesAfter > MAX_COMPRESSED_TOTAL_BYTES) return undefined;
    this.#compressed.set(file.path, copy);
    this.#compressedBytes = bytesAfter;
    return copy;
  }

  async #find(
    rootReal: string,
    relative: string,
  ): Promise<{ path: string; size: number; mtimeMs: number } | undefined> {
    const candidate = resolve(rootReal, `.${relative}`);
    if (!candidate.startsWith(rootReal + sep)) return undefined;
    try {
      const real = await realpath(candidate);
      if (!real.startsWith(rootReal + sep)) return undefined;
      const info = await stat(real);
      return info.isFile() ? { path: real, size: info.size, mtimeMs: info.mtimeMs } : undefined;
    } catch {
      return undefined;
    }
  }
}
