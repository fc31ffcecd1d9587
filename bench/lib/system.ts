import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { availableParallelism, cpus, loadavg, release } from "node:os";

export interface Environment {
  readonly node: string;
  readonly cpuModel: string;
  readonly cores: number;
  readonly kernel: string;
  readonly nginx: string;
  readonly wrk: string;
  readonly loadAverage1m: number;
}

function hasCommand(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
}

/** Installs nginx and wrk with apt-get when either is missing (root only); throws with instructions otherwise. */
export function ensureTools(): void {
  const missing = ["nginx", "wrk"].filter((name) => !hasCommand(name));
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0)
    throw new Error(`bench needs ${missing.join(" and ")}: run 'sudo apt-get install -y nginx wrk' and retry`);
  console.log(`bench: installing ${missing.join(", ")} with apt-get`);
  const install = (): number | null =>
    spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "nginx", "wrk"], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    }).status;
  if (install() !== 0) {
    spawnSync("apt-get", ["update"], { stdio: "inherit" });
    if (install() !== 0) throw new Error("apt-get install -y nginx wrk failed");
  }
}

/** taskset exists and there are at least 2 cores to keep the server and the load generator apart. */
export function canPin(): boolean {
  return availableParallelism() >= 2 && hasCommand("taskset");
}

function firstLine(command: string, args: readonly string[]): string {
  const result = spawnSync(command, args, { encoding: "utf8" });
  return `${result.stdout}${result.stderr}`.split("\n")[0]?.trim() ?? "unknown";
}

export function describeEnvironment(): Environment {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  return {
    node: process.version,
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    cores: cpus().length, // not availableParallelism(): the runner pins itself to one core
    kernel: release(),
    nginx: firstLine("nginx", ["-v"]).replace(/^nginx version: nginx\//, ""),
    wrk: firstLine("wrk", ["-v"]).replace(/ Copyright.*$/, ""),
    loadAverage1m: loadavg()[0] ?? 0,
  };
}

/** A port that was free a moment ago on 127.0.0.1 (for nginx and the proxy, which are given a fixed port). */
export async function findFreePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function gitRevision(): string {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}
