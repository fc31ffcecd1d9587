import { isRunning, stopChild } from "./children.ts";
import { startNodeServer } from "./http-ready.ts";
import type { Placement } from "./placement.ts";
import { findChildPids } from "./proc.ts";

export interface ImagikaOptions {
  readonly originUrl: string;
  readonly port: number;
  /** Where the proxy's stdout (its JSON log lines) goes: a file path, or "/dev/null". */
  readonly logPath: string;
  /** Where its stderr goes (kept to explain a failed start). */
  readonly stderrPath: string;
  readonly placement: Placement;
  /** More proxy flags, e.g. ["--workers", "2"] or ["--cache-max-bytes", "20MB"]. */
  readonly extraArgs?: readonly string[];
  /** Log level (default info: the production path). */
  readonly logLevel?: string;
  /** Environment of the proxy process (allocator settings); default: this process's. */
  readonly env?: NodeJS.ProcessEnv;
  /** Node flags before the script (default: --no-memory-reducer, as `npm start`). */
  readonly nodeFlags?: readonly string[];
}

export interface RunningImagika {
  readonly url: string;
  readonly pid: number;
  /** The exact command line, for the report. */
  readonly command: string;
  /** The process and, with --workers, its cluster workers: every pid whose CPU counts. */
  pids(): number[];
  stop(): Promise<void>;
}

/**
 * The proxy as its own process (`node --import tsx src/main.ts proxy`), so its CPU and RSS are its own. Rate limiting
 * stays on, with a limit far above the offered load, and logging stays at info: the measured path is the real one.
 */
export async function startImagika(options: ImagikaOptions): Promise<RunningImagika> {
  const nodeArgs = [
    ...(options.nodeFlags ?? ["--no-memory-reducer"]), // as `npm start` and bin/imagika.js run it (see bin/imagika.js)
    "--import",
    "tsx",
    "src/main.ts",
    "proxy",
    "--host",
    "127.0.0.1",
    "--port",
    String(options.port),
    "--origin",
    options.originUrl,
    "--rate-limit",
    "1000000",
    "--rate-burst",
    "1000000",
    "--log-level",
    options.logLevel ?? "info",
    ...(options.extraArgs ?? []),
  ];
  const { child, url, command } = await startNodeServer({
    name: "imagika",
    nodeArgs,
    port: options.port,
    placement: options.placement,
    stdoutPath: options.logPath,
    stderrPath: options.stderrPath,
    timeoutMs: 60_000,
    ...(options.env ? { env: options.env } : {}),
  });
  return {
    url,
    pid: child.pid ?? 0,
    command,
    pids: () => (child.pid === undefined ? [] : [child.pid, ...findChildPids(child.pid)]),
    stop: async () => {
      // SIGTERM: graceful close (idle keep-alive sockets are closed at once), SIGKILL after 15 s.
      if (isRunning(child)) await stopChild(child, 15_000);
    },
  };
}
