import { open, realpath } from "node:fs/promises";
import { realpathSync } from "node:fs";
import { resolve, sep } from "node:path";
import type { OriginConfig } from "../config/config.ts";
import { ProxyError } from "../errors.ts";
import { sourceTooLarge } from "./body-collector.ts";
import { NO_CACHING } from "./fetcher.ts";
import type { FetchOptions, Fetcher, OriginReply, Validators } from "./fetcher.ts";

/**
 * Reads originals from a local directory. Paths arrive validated (no "..", NUL or empty segments), and the resolved
 * real path must still lie under the root's real path, so a symlink cannot lead outside it.
 */
export class FsFetcher implements Fetcher {
  readonly description: string;
  readonly #root: string;
  readonly #maxBytes: number;

  constructor(config: OriginConfig) {
    if (config.spec.kind !== "fs") throw new Error("FsFetcher needs a directory origin");
    this.#root = realpathSync(resolve(config.spec.root));
    this.#maxBytes = config.maxSourceBytes;
    this.description = `file://${this.#root}`;
  }

  get root(): string {
    return this.#root;
  }

  /**
   * A file's validator is its size and mtime (nanoseconds), as nginx's ETag: a conditional fetch whose ETag still
   * matches costs one stat() and reads nothing. Files carry no caching headers: --cache-ttl-seconds applies.
   */
  async fetchOriginal(path: string, options: FetchOptions = {}): Promise<OriginReply> {
    const real = await this.#resolve(path);
    let handle;
    try {
      handle = await open(real, "r");
    } catch (error) {
      throw fsError(error);
    }
    try {
      const stat = await handle.stat({ bigint: true });
      if (!stat.isFile()) throw new ProxyError("ORIGIN_NOT_FOUND", "the origin has no such image");
      const validators: Validators = { etag: `"${stat.size.toString(36)}-${stat.mtimeNs.toString(36)}"` };
      const caching = { ...NO_CACHING, validators };
      if (options.validators?.etag === validators.etag) return { status: 304, caching };
      const size = Number(stat.size);
      if (size > this.#maxBytes) throw sourceTooLarge(this.#maxBytes, size);
      options.onSize?.(size);
      // Read at most maxBytes + 1: a file that grows while we read is still caught.
      const buffer = Buffer.allocUnsafe(Math.min(size, this.#maxBytes) + 1);
      let length = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length > this.#maxBytes) throw sourceTooLarge(this.#maxBytes);
        if (length === buffer.length) break;
      }
      return { status: 200, body: buffer.subarray(0, length), caching };
    } catch (error) {
      throw fsError(error);
    } finally {
      await handle.close();
    }
  }

  async checkReady(): Promise<void> {
    try {
      await realpath(this.#root);
    } catch (error) {
      throw fsError(error);
    }
  }

  async close(): Promise<void> {}

  async #resolve(path: string): Promise<string> {
    const candidate = resolve(this.#root, path);
    if (!candidate.startsWith(this.#root + sep)) throw new ProxyError("INVALID_PATH", "the path leaves the image root");
    let real: string;
    try {
      real = await realpath(candidate);
    } catch (error) {
      throw fsError(error);
    }
    if (!real.startsWith(this.#root + sep))
      throw new ProxyError("ORIGIN_FORBIDDEN", "the path leads outside the image root");
    return real;
  }
}

/**
 * errno values that say the client's path names no image here: missing, through a file (ENOTDIR), a directory, a
 * segment over the file system's 255-byte NAME_MAX (ENAMETOOLONG), a symlink loop (ELOOP), a name the file system
 * cannot store (EILSEQ), a socket or device node (ENXIO, ENODEV). The path comes from the URL, so these are 404s.
 */
const NOT_FOUND_ERRNOS = new Set(["ENOENT", "ENOTDIR", "EISDIR", "ENAMETOOLONG", "ELOOP", "EILSEQ", "ENXIO", "ENODEV"]);

/** File system errors become ORIGIN_* codes here: the client's path → 404 or 403, the disk failing → 502 (or 504). */
function fsError(error: unknown): ProxyError {
  if (error instanceof ProxyError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && NOT_FOUND_ERRNOS.has(code)) {
    return new ProxyError("ORIGIN_NOT_FOUND", "the origin has no such image", { cause: error });
  }
  if (code === "EACCES" || code === "EPERM")
    return new ProxyError("ORIGIN_FORBIDDEN", "the origin refused access", { cause: error });
  if (code === "ETIMEDOUT") {
    // a network file system (NFS soft mount, SMB) that did not answer
    return new ProxyError("ORIGIN_TIMEOUT", "the image could not be read in time (ETIMEDOUT)", { cause: error });
  }
  // EIO, EMFILE/ENFILE, ESTALE, ...: the machine or its disk, not the URL
  return new ProxyError("ORIGIN_FAILED", `the image could not be read (${String(code)})`, { cause: error });
}
