import { openSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isRunning, spawnTracked, stopChild } from "./children.ts";
import { waitForHttp } from "./http-ready.ts";
import { placeCommand } from "./placement.ts";
import type { Placement } from "./placement.ts";

const LIB_DIR = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(LIB_DIR, "../..");

export interface RunningNodeBare {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** bench/lib/node-bare-server.ts serving `files` of `dir` from memory at `/img/<file>`. */
export async function startNodeBare(options: {
  readonly dir: string;
  readonly files: readonly string[];
  readonly port: number;
  readonly stderrPath: string;
  readonly placement: Placement;
}): Promise<RunningNodeBare> {
  const nodeArgs = [
    "--import",
    "tsx",
    join(LIB_DIR, "node-bare-server.ts"),
    String(options.port),
    options.dir,
    ...options.files,
  ];
  const [command, args] = placeCommand(process.execPath, nodeArgs, options.placement);
  const child = spawnTracked(command, args, {
    cwd: REPO_ROOT,
    stdio: ["ignore", "ignore", openSync(options.stderrPath, "a")],
  });
  const url = `http://127.0.0.1:${options.port}`;
  try {
    await waitForHttp(`${url}/healthz`, child, 30_000);
  } catch (error) {
    await stopChild(child);
    const stderr = readFileSync(options.stderrPath, "utf8").slice(-3000);
    throw new Error(`the bare Node server did not start: ${String(error)}\n${stderr}`, { cause: error });
  }
  return {
    url,
    pid: child.pid ?? 0,
    stop: async () => {
      if (isRunning(child)) await stopChild(child, 5000);
    },
  };
}
