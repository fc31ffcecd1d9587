import { execFile } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startOriginServer } from "../../origin-server/server.ts";
import { startProxy } from "./proxy.ts";

const WEB_DIST = resolve(fileURLToPath(new URL("../../web/dist", import.meta.url)));
const CLI = fileURLToPath(new URL("../../bin/imagika.js", import.meta.url));

export interface StackOptions {
  readonly rateLimit?: number;
  readonly rateBurst?: number;
  readonly adminToken?: string;
  /** Sample originals generated into a fresh temp dir (deterministic; about 0.8 s each). */
  readonly sampleCount?: number;
  /** --presets: name → options. */
  readonly presets?: Readonly<Record<string, string>>;
}

export interface Stack {
  readonly proxyUrl: string;
  readonly originUrl: string;
  readonly dir: string;
  close(): Promise<void>;
}

/** What `imagika start` runs, in-process on ports chosen by the OS: samples → origin server → proxy serving web/dist. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const dir = await mkdtemp(join(tmpdir(), "imagika-stack-"));
  // In a child process (`imagika samples`): generating 4K originals with sharp leaves this process's RSS at ~290 MiB
  // for 4 and ~430 for 9 (from 91), which the proxy's memory budget, 845 MiB without a cgroup limit, would count as
  // its own and answer 413 once it ran out.
  const count = String(options.sampleCount ?? 4);
  await promisify(execFile)(process.execPath, [CLI, "samples", "--dir", dir, "--count", count, "--seed", "42"]);
  const origin = await startOriginServer({ dir, port: 0, host: "127.0.0.1", latencyMs: 0, bandwidthBytesPerSecond: 0 });
  const proxy = await startProxy({
    origin: origin.url,
    webRoot: WEB_DIST,
    rateLimit: options.rateLimit ?? 0,
    rateBurst: options.rateBurst ?? 100,
    adminToken: options.adminToken ?? "",
    presets: options.presets ?? {},
  });
  return {
    proxyUrl: proxy.url,
    originUrl: origin.url,
    dir,
    close: async () => {
      await proxy.close();
      await origin.close();
    },
  };
}
