import type { ChildProcess } from "node:child_process";
import { openSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { spawnTracked, stopChild } from "./children.ts";
import { placeCommand } from "./placement.ts";
import type { Placement } from "./placement.ts";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Polls `url` until it answers 2xx; fails early if `child` exits, or after `timeoutMs`. */
export async function waitForHttp(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  while (performance.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`exited (${child.exitCode ?? child.signalCode}) before answering ${url}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) return;
      lastError = new Error(`status ${res.status}`);
    } catch (error) {
      lastError = error;
    }
    await sleep(100);
  }
  throw new Error(`no answer from ${url} within ${timeoutMs} ms: ${String(lastError)}`);
}

export interface NodeServerOptions {
  /** For error messages: "ipx", "imagika", ... */
  readonly name: string;
  /** Arguments after `node` (e.g. ["--import", "tsx", "src/main.ts", "proxy", ...]), run in the repository root. */
  readonly nodeArgs: readonly string[];
  readonly port: number;
  readonly placement: Placement;
  /** Where stdout goes (default: discarded). */
  readonly stdoutPath?: string;
  /** Where stderr goes; its tail explains a failed start. */
  readonly stderrPath: string;
  readonly timeoutMs: number;
  /** Environment of the child (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
}

export interface StartedNodeServer {
  readonly child: ChildProcess;
  readonly url: string;
  /** The exact command line, for the report. */
  readonly command: string;
}

/** A Node.js server as a tracked child process, placed on its cores, up once `/healthz` answers 2xx. */
export async function startNodeServer(options: NodeServerOptions): Promise<StartedNodeServer> {
  const [command, args] = placeCommand(process.execPath, options.nodeArgs, options.placement);
  const child = spawnTracked(command, args, {
    cwd: REPO_ROOT,
    ...(options.env ? { env: options.env } : {}),
    stdio: [
      "ignore",
      options.stdoutPath === undefined ? "ignore" : openSync(options.stdoutPath, "a"),
      openSync(options.stderrPath, "a"),
    ],
  });
  const url = `http://127.0.0.1:${options.port}`;
  try {
    await waitForHttp(`${url}/healthz`, child, options.timeoutMs);
  } catch (error) {
    await stopChild(child);
    const stderr = readFileSync(options.stderrPath, "utf8").slice(-4000);
    throw new Error(`${options.name} did not start: ${String(error)}\n${stderr}`, { cause: error });
  }
  return { child, url, command: [command, ...args].join(" ") };
}
