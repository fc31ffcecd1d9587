import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isRunning, stopChild } from "./children.ts";
import { startNodeServer } from "./http-ready.ts";
import type { Placement } from "./placement.ts";

const LIB_DIR = dirname(fileURLToPath(import.meta.url));

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
  const { child, url } = await startNodeServer({
    name: "the bare Node server",
    nodeArgs: [
      "--import",
      "tsx",
      join(LIB_DIR, "node-bare-server.ts"),
      String(options.port),
      options.dir,
      ...options.files,
    ],
    port: options.port,
    placement: options.placement,
    stderrPath: options.stderrPath,
    timeoutMs: 30_000,
  });
  return {
    url,
    pid: child.pid ?? 0,
    stop: async () => {
      if (isRunning(child)) await stopChild(child, 5000);
    },
  };
}
