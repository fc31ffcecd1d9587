import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isRunning, stopChild } from "./children.ts";
import { startNodeServer } from "./http-ready.ts";
import type { Placement } from "./placement.ts";

const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const REPO_ROOT = resolve(BENCH_DIR, "..");

/** ipx 3.1.1 (Nov 2026's latest; its own sharp ^0.34.3, prebuilt, works on Node 20), outside package.json. */
export const IPX_VERSION = "3.1.1";
/** Git-ignored; `npm install --no-save --prefix bench/.peers` keeps package.json and the lock file untouched. */
export const PEERS_DIR = join(BENCH_DIR, ".peers");
const IPX_PACKAGE = join(PEERS_DIR, "node_modules", "ipx", "package.json");
export const IPX_ENTRY = pathToFileURL(join(PEERS_DIR, "node_modules", "ipx", "dist", "index.mjs")).href;

/** Installs ipx into bench/.peers when it is missing or another version. */
export function ensureIpx(): void {
  if (existsSync(IPX_PACKAGE)) {
    const { version } = JSON.parse(readFileSync(IPX_PACKAGE, "utf8")) as { version?: string };
    if (version === IPX_VERSION) return;
  }
  console.log(`bench: installing ipx@${IPX_VERSION} into bench/.peers (npm install --no-save)`);
  const result = spawnSync(
    "npm",
    ["install", "--no-save", "--no-audit", "--no-fund", "--prefix", PEERS_DIR, `ipx@${IPX_VERSION}`],
    { cwd: REPO_ROOT, stdio: "inherit" },
  );
  if (result.status !== 0) throw new Error(`npm install --prefix bench/.peers ipx@${IPX_VERSION} failed`);
}

export function ipxSharpVersion(): string {
  const path = join(PEERS_DIR, "node_modules", "sharp", "package.json");
  return existsSync(path) ? ((JSON.parse(readFileSync(path, "utf8")) as { version?: string }).version ?? "?") : "?";
}

export interface IpxOptions {
  readonly originUrl: string;
  readonly port: number;
  readonly stderrPath: string;
  readonly placement: Placement;
}

export interface RunningIpx {
  readonly url: string;
  readonly pid: number;
  /** `/img/<file>?w=1280` in ipx's URL scheme: modifiers first, then the original's URL. */
  urlFor(file: string, modifiers: string): string;
  stop(): Promise<void>;
}

/** ipx with its HTTP storage reading from the origin (it sends a HEAD for the metadata, then a GET, per request). */
export async function startIpx(options: IpxOptions): Promise<RunningIpx> {
  const origin = new URL(options.originUrl);
  const { child, url } = await startNodeServer({
    name: "ipx",
    nodeArgs: ["--import", "tsx", join(BENCH_DIR, "lib", "ipx-server.ts"), String(options.port), origin.host],
    port: options.port,
    placement: options.placement,
    stderrPath: options.stderrPath,
    timeoutMs: 30_000,
  });
  const originBase = `http://${origin.host}${origin.pathname.replace(/\/$/, "")}`;
  return {
    url,
    pid: child.pid ?? 0,
    urlFor: (file, modifiers) => `${url}/${modifiers}/${originBase}/${file}`,
    stop: async () => {
      if (isRunning(child)) await stopChild(child, 5000);
    },
  };
}
