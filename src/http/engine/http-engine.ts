import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { Connection } from "./connection.ts";
import type { RefusalHandler, RequestHandler } from "./connection.ts";

/**
 * The proxy's HTTP/1.1 server: `net` sockets, llhttp for request heads (request-parser.ts), one request at a time per
 * connection (connection.ts), and Content-Length framing for every reply (reply.ts).
 *
 * Why not node:http: a memory hit is the hot path, and node:http's per-request machinery (IncomingMessage and
 * ServerResponse with their streams, per-header validation of every response) cost more than the rest of the hit.
 * Interleaved wrk runs on one core (docs/benchmarks.md, session 7): the proxy's memory hit on node:http took 45.2 µs
 * of CPU at 0.65x nginx's req/s, on this engine 39.9 µs at 0.74x (35.1 µs once request headers were a plain object),
 * where a bare node:http server sending 2 headers and nothing else took 35.5 µs.
 *
 * What it does not do, on purpose: request bodies (a request that announces one is answered, then the connection is
 * closed unread), chunked replies, 100-continue, upgrades (answered, then closed), HTTP/2 and TLS (behind a load
 * balancer or CDN, which terminate them).
 */
export interface HttpEngineOptions {
  readonly handler: RequestHandler;
  /** Time a client has for a request head from its first byte (408 after). */
  readonly headersTimeoutMs: number;
  /** Idle time before a kept-alive connection is closed; 0: never. Idle starts once the last reply has left. */
  readonly keepAliveTimeoutMs: number;
  /** Longest a reply may sit unsent without progress (a client that stopped reading) before the connection is cut. */
  readonly sendTimeoutMs: number;
  readonly maxRequestsPerSocket: number;
  /** Open connections one client key may hold; more are closed at once. */
  readonly maxConnectionsPerClient: number;
  /** The client key of a socket's peer: the connection cap's key, and each request's `clientKey`. */
  readonly clientKeyOf: (socket: Socket) => string;
  readonly onRejectedConnection: () => void;
  /**
   * Answers a request refused before any route saw it: 400 (malformed), 408 (too slow), 414 or 431 (too large), as a
   * ProxyError whose code says which. It must answer before it returns; the connection closes after the reply.
   */
  readonly onRefusedRequest: RefusalHandler;
}

export interface HttpEngine {
  readonly server: Server;
  /** Every reply carries `connection: close` from now on and idle connections close; resolves once all have. */
  close(timeoutMs: number): Promise<void>;
  readonly isShuttingDown: () => boolean;
}

/** How long a closing connection may keep sending before it is cut (see Connection's CLOSING). */
const LINGER_MS = 2000;

export function createHttpEngine(options: HttpEngineOptions): HttpEngine {
  let isShuttingDown = false;
  const connections = new Set<Connection>();
  const connectionsByClient = new Map<string, number>();
  const keepAliveSeconds = Math.floor(options.keepAliveTimeoutMs / 1000);
  const connectionOptions = {
    handler: options.handler,
    lingerMs: LINGER_MS,
    onRefusedRequest: options.onRefusedRequest,
    keepAliveLine: keepAliveSeconds > 0 ? `keep-alive: timeout=${keepAliveSeconds}\r\n` : "",
    maxRequestsPerSocket: options.maxRequestsPerSocket,
    isShuttingDown: (): boolean => isShuttingDown,
  };

  // allowHalfOpen: a client's FIN after its last request must not cut the reply still being made.
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    const key = options.clientKeyOf(socket);
    const open = (connectionsByClient.get(key) ?? 0) + 1;
    if (open > options.maxConnectionsPerClient || isShuttingDown) {
      options.onRejectedConnection();
      socket.destroy();
      return;
    }
    connectionsByClient.set(key, open);
    const connection = new Connection(socket, key, connectionOptions);
    connections.add(connection);
    socket.once("close", () => {
      connections.delete(connection);
      const left = (connectionsByClient.get(key) ?? 1) - 1;
      if (left <= 0) connectionsByClient.delete(key);
      else connectionsByClient.set(key, left);
    });
  });

  // One sweep for every connection's timeouts instead of a timer per request (as node:http's connectionsCheckingInterval).
  const sweepMs = Math.max(
    50,
    Math.min(1000, options.headersTimeoutMs / 2, (options.keepAliveTimeoutMs || 2000) / 2, options.sendTimeoutMs / 2),
  );
  const sweep = setInterval(() => {
    const nowMs = Date.now();
    for (const connection of connections) {
      connection.checkTimeouts(nowMs, options);
    }
  }, sweepMs);
  sweep.unref();
  server.once("close", () => clearInterval(sweep));

  async function close(timeoutMs: number): Promise<void> {
    isShuttingDown = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const closeIdle = (): void => {
      for (const connection of connections) if (connection.isIdle) connection.socket.destroy();
    };
    closeIdle();
    const idleSweep = setInterval(closeIdle, 100);
    const timer = setTimeout(() => {
      for (const connection of connections) connection.socket.destroy();
    }, timeoutMs);
    await closed;
    clearTimeout(timer);
    clearInterval(idleSweep);
  }

  return { server, close, isShuttingDown: () => isShuttingDown };
}
