import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export type Route = (req: IncomingMessage, res: ServerResponse) => void;

export interface TestOrigin {
  readonly url: string;
  /** Requests per path (without query). */
  count(path: string): number;
  total(): number;
  set(path: string, route: Route): void;
  close(): Promise<void>;
}

/** Serves a buffer with a given content type (and optional delay before headers). */
export function bytesRoute(body: Buffer, contentType = "application/octet-stream", delayMs = 0): Route {
  return (_req, res) => {
    const send = (): void => {
      res.writeHead(200, { "content-type": contentType, "content-length": body.byteLength });
      res.end(body);
    };
    if (delayMs > 0) setTimeout(send, delayMs);
    else send();
  };
}

/**
 * A real HTTP origin on 127.0.0.1:0 whose routes a test sets per path, counting every request, so tests can prove
 * the proxy fetched once. Faulty behaviours (stall, reset, lies) are routes too.
 */
export async function startTestOrigin(routes: Record<string, Route> = {}): Promise<TestOrigin> {
  const table = new Map(Object.entries(routes));
  const counts = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? "/").split("?")[0] ?? "/");
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const route = table.get(path);
    if (!route) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
      return;
    }
    route(req, res);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    count: (path) => counts.get(path) ?? 0,
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
    set: (path, route) => table.set(path, route),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** How a VersionedImage fails while `failWith` is set. */
export type OriginFault = number | "stall" | "reset";

/**
 * One original whose bytes a test replaces (each version gets its own ETag and Last-Modified), answering conditional
 * requests with 304, sending the Cache-Control a test chooses, and failing on demand.
 */
export interface VersionedImage {
  readonly route: Route;
  /** Serve `body` from now on: a new version. */
  publish(body: Buffer): void;
  /** Sent with every 200 and 304; undefined: none. */
  cacheControl: string | undefined;
  /** Sent with every 200 and 304 (an HTTP-date); undefined: none. */
  expires: string | undefined;
  /** Which validators the origin sends. */
  validators: "etag" | "last-modified" | "none";
  /** Every request fails this way until cleared: an HTTP status, never answering, or a reset connection. */
  failWith: OriginFault | undefined;
  readonly fullAnswers: number;
  readonly notModifiedAnswers: number;
  /** Requests that carried If-None-Match or If-Modified-Since. */
  readonly conditionalRequests: number;
}

export function versionedImage(
  body: Buffer,
  options: { cacheControl?: string; delayMs?: number } = {},
): VersionedImage {
  let current = body;
  let version = 1;
  const etag = (): string => `"v${version}"`;
  const lastModified = (): string => new Date(Date.UTC(2025, 0, 1) + version * 60_000).toUTCString();
  const image: VersionedImage & { fullAnswers: number; notModifiedAnswers: number; conditionalRequests: number } = {
    cacheControl: options.cacheControl,
    expires: undefined,
    validators: "etag",
    failWith: undefined,
    fullAnswers: 0,
    notModifiedAnswers: 0,
    conditionalRequests: 0,
    publish(next) {
      current = next;
      version++;
    },
    route: (req, res) => {
      const ifNoneMatch = req.headers["if-none-match"];
      const ifModifiedSince = req.headers["if-modified-since"];
      if (ifNoneMatch !== undefined || ifModifiedSince !== undefined) image.conditionalRequests++;
      const fault = image.failWith;
      if (fault === "stall") return;
      if (fault === "reset") return void req.socket.destroy();
      if (typeof fault === "number") {
        res.writeHead(fault, { "content-type": "text/plain" });
        return void res.end("failing on purpose");
      }
      const headers: Record<string, string> = {};
      if (image.validators === "etag") headers.etag = etag();
      if (image.validators === "last-modified") headers["last-modified"] = lastModified();
      if (image.cacheControl !== undefined) headers["cache-control"] = image.cacheControl;
      if (image.expires !== undefined) headers.expires = image.expires;
      const isNotModified =
        (image.validators === "etag" && ifNoneMatch === etag()) ||
        (image.validators === "last-modified" &&
          ifNoneMatch === undefined &&
          ifModifiedSince !== undefined &&
          Date.parse(ifModifiedSince) >= Date.parse(lastModified()));
      const answer = (): void => {
        if (isNotModified) {
          image.notModifiedAnswers++;
          res.writeHead(304, headers);
          res.end();
          return;
        }
        image.fullAnswers++;
        res.writeHead(200, { ...headers, "content-type": "image/jpeg", "content-length": current.byteLength });
        res.end(current);
      };
      if (options.delayMs) setTimeout(answer, options.delayMs);
      else answer();
    },
  };
  return image;
}
