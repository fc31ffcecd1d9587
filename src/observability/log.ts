import { pino } from "pino";
import type { Logger } from "pino";
import type { LogConfig } from "../config/config.ts";

export type { Logger };

/** One logger per process: JSON lines to `fd` (stdout), or pino-pretty when asked (dev). */
export function createLogger(config: LogConfig, fd = 1): Logger {
  if (config.pretty) {
    return pino({
      level: config.level,
      transport: {
        target: "pino-pretty",
        options: { colorize: true, translateTime: "HH:MM:ss.l", ignore: "pid,hostname" },
      },
    });
  }
  // Synchronous writes (pino's own default). The request lines arrive in batches of up to 64 (createRequestLog), so
  // that is one write(2) per batch on the event loop. The asynchronous destination used before handed every batch to
  // the libuv thread pool: on a loaded core each write woke a worker thread and then the event loop again (2.5x the
  // context switches of a bare Node server), and a memory hit cost 3 µs more (46.3 against 49.6 µs of CPU, medians of
  // 10 interleaved 2 s wrk runs). The trade-off is pino's: a log reader that stops reading stalls the process rather
  // than letting its memory grow.
  return pino({ level: config.level, base: { pid: process.pid } }, pino.destination({ fd, sync: true }));
}

export interface RequestLog {
  (reqId: string, method: string, url: string, status: number, cache: string | undefined, ms: number): void;
  /** Writes the lines still batched. */
  flush(): void;
  /** Writes them and stops the batch timer (at shutdown); lines logged after are written at once, unbatched. */
  close(): void;
}

/** Lines per batch handed to the destination, and the longest a line waits for its batch. */
const BATCH_LINES = 64;
const BATCH_MS = 100;

/** A path that JSON needs no escapes for: printable ASCII without `"` and `\`. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what needs escaping
const JSON_SAFE = /^[^"\\\x00-\x1f\x7f-\uffff]*$/;

/**
 * The per-request info line. With JSON output it is assembled by hand and handed to pino's destination in batches of
 * up to 64 lines (or every 100 ms): pino's generic serialisation of the same seven fields cost ~10 µs per request in
 * the hot-path benchmark, and one destination write per line another ~3 µs; this costs ~1 µs. The line has the same
 * shape pino writes (level, time, pid, fields, msg). `reqId` (validated or a UUID) and `method` (an HTTP token, checked
 * by Node's parser) never need escaping; the path is escaped unless it is plain ASCII. Lines are kept in an array and
 * joined once per batch: one flat string, where appending to one string built a 64-line rope that the write had to
 * flatten (0.8-1.2 against 1.1-1.8 µs per line in a loop on the session-6 VM, with the batch written to a file).
 */
export function createRequestLog(logger: Logger): RequestLog {
  const stream = (logger as unknown as Record<symbol, { write(line: string): void } | undefined>)[
    pino.symbols.streamSym
  ];
  const lines: string[] = [];
  const pidField = `,"pid":${process.pid},"reqId":"`;
  const flush = (): void => {
    if (lines.length === 0 || stream === undefined) return;
    const batch = lines.join("");
    lines.length = 0;
    stream.write(batch);
  };
  let timer = stream === undefined ? undefined : setInterval(flush, BATCH_MS).unref();
  const log = (
    reqId: string,
    method: string,
    url: string,
    status: number,
    cache: string | undefined,
    ms: number,
  ): void => {
    if (!logger.isLevelEnabled("info")) return;
    const path = url.length > 256 ? `${url.slice(0, 256)}…` : url;
    if (stream === undefined) {
      logger.info({ reqId, method, path, status, cache, ms: +ms.toFixed(2) }, "request");
      return;
    }
    // pino-pretty (dev) reads the same JSON lines, so this also works behind a transport.
    lines.push(
      `{"level":30,"time":${Date.now()}${pidField}${reqId}","method":"${method}","path":${JSON_SAFE.test(path) ? `"${path}"` : JSON.stringify(path)},"status":${status}${cache === undefined ? "" : `,"cache":"${cache}"`},"ms":${ms.toFixed(2)},"msg":"request"}\n`,
    );
    if (lines.length >= BATCH_LINES || timer === undefined) flush();
  };
  const close = (): void => {
    clearInterval(timer);
    timer = undefined;
    flush();
  };
  return Object.assign(log, { flush, close });
}
