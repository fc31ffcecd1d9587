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
