import { createReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
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

/** Content-Security-Policy of the app shell: everything from this origin, nothing from anywhere else. */
const APP_CSP =
  "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'";

/**
 * Serves the built frontend (web/dist). Paths that name no file fall back to index.html (client-side routes);
 * hashed files under /assets/ are immutable. Only files under the root's real path are ever opened.
 */
export class StaticFiles {
  readonly #root: string;

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
    res.writeHead(200, {
      "content-type": TYPES[extname(file.path)] ?? "application/octet-stream",
      "content-length": file.size,
      "cache-control": isAsset ? "public, max-age=31536000, immutable" : "no-cache",
      "x-content-type-options": "nosniff",
      ...(file.path.endsWith(".html") ? { "content-security-policy": APP_CSP, "x-frame-options": "DENY" } : {}),
    });
    if (req.method === "HEAD") {
      res.end();
      return true;
    }
    res.stream(createReadStream(file.path));
    return true;
  }

  async #find(rootReal: string, relative: string): Promise<{ path: string; size: number } | undefined> {
    const candidate = resolve(rootReal, `.${relative}`);
    if (!candidate.startsWith(rootReal + sep)) return undefined;
    try {
      const real = await realpath(candidate);
      if (!real.startsWith(rootReal + sep)) return undefined;
      const info = await stat(real);
      return info.isFile() ? { path: real, size: info.size } : undefined;
    } catch {
      return undefined;
    }
  }
}
