import { openSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isRunning, spawnTracked, stopChild, trackPid } from "./children.ts";
import { waitForHttp } from "./http-ready.ts";
import { placeCommand } from "./placement.ts";
import type { Placement } from "./placement.ts";
import { findChildPids } from "./proc.ts";

export interface VarnishOptions {
  /** Origin base URL; Varnish passes paths through, so `/<file>` is the origin's `/<file>`. */
  readonly originUrl: string;
  readonly port: number;
  /** Private working directory (`-n`): shared memory log, compiled VCL. */
  readonly dir: string;
  /** A path the origin answers with 200, polled until Varnish is up. */
  readonly readyPath: string;
  readonly placement: Placement;
  /** A VCL program (`-f`) in place of the default one with `-b <origin>`; it names the backend itself. */
  readonly vcl?: string;
}

export interface RunningVarnish {
  readonly url: string;
  readonly managerPid: number;
  /** The cache child ("cache-main"), which serves every request. */
  readonly cachePid: number;
  readonly allPids: readonly number[];
  readonly command: string;
  stop(): Promise<void>;
}

/**
 * `varnishd -F -a 127.0.0.1:<port> -b <origin> -s malloc,256m -n <dir> -t 3600`: the default VCL in front of the origin.
 * `-t 3600` because the origin sends no Cache-Control (Varnish's default TTL is 120 s, shorter than a full run).
 * As root, `-j none`: the default jail switches to the `vcache` user, which cannot enter a 0700 temp dir.
 */
export async function startVarnish(options: VarnishOptions): Promise<RunningVarnish> {
  await mkdir(options.dir, { recursive: true });
  const origin = new URL(options.originUrl);
  const vclPath = join(options.dir, "bench.vcl");
  if (options.vcl !== undefined) await writeFile(vclPath, options.vcl);
  const varnishArgs = [
    "-F",
    ...(process.getuid?.() === 0 ? ["-j", "none"] : []),
    "-a",
    `127.0.0.1:${options.port}`,
    ...(options.vcl !== undefined ? ["-f", vclPath] : ["-b", origin.host]),
    "-s",
    "malloc,256m",
    "-n",
    options.dir,
    "-t",
    "3600",
  ];
  const [command, args] = placeCommand("varnishd", varnishArgs, options.placement);
  const logPath = join(options.dir, "varnishd.log");
  const log = openSync(logPath, "a");
  const child = spawnTracked(command, args, { stdio: ["ignore", log, log] });
  const url = `http://127.0.0.1:${options.port}`;
  try {
    await waitForHttp(`${url}${options.readyPath}`, child, 30_000);
  } catch (error) {
    await stopChild(child);
    const text = await readFile(logPath, "utf8").catch(() => "");
    throw new Error(`varnishd did not start: ${String(error)}\n${text.slice(-3000)}`, { cause: error });
  }
  const managerPid = child.pid ?? 0;
  let children = findChildPids(managerPid);
  for (let i = 0; i < 20 && children.length === 0; i++) {
    await sleep(100);
    children = findChildPids(managerPid);
  }
  for (const pid of children) trackPid(pid);
  const cachePid = children[0];
  if (cachePid === undefined) {
    await stopChild(child);
    throw new Error(`varnishd: no cache child under manager ${managerPid}`);
  }
  return {
    url,
    managerPid,
    cachePid,
    allPids: [managerPid, ...children],
    command: [command, ...args].join(" "),
    stop: async () => {
      if (isRunning(child)) await stopChild(child, 10_000); // SIGTERM to the manager stops its cache child
    },
  };
}
