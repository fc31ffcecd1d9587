import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
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
  readonly varnish: string;
  readonly vips: string;
  readonly loadAverage1m: number;
}

function hasCommand(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
}

/** Every system tool the bench runs, with the Debian package that brings it (a path, or a command on PATH). */
const TOOLS: readonly { readonly check: string; readonly pkg: string }[] = [
  { check: "nginx", pkg: "nginx" },
  { check: "/usr/lib/nginx/modules/ngx_http_image_filter_module.so", pkg: "libnginx-mod-http-image-filter" },
  { check: "varnishd", pkg: "varnish" },
  { check: "vipsthumbnail", pkg: "libvips-tools" },
  { check: "wrk", pkg: "wrk" },
];

/** Installs whichever of nginx, its image_filter module, Varnish, vipsthumbnail and wrk is missing (apt-get, root). */
export function ensureTools(): void {
  const missing = TOOLS.filter((t) => (t.check.startsWith("/") ? !existsSync(t.check) : !hasCommand(t.check))).map(
    (t) => t.pkg,
  );
  if (missing.length === 0) return;
  const line = `apt-get install -y ${missing.join(" ")}`;
  if (process.getuid?.() !== 0) throw new Error(`bench needs ${missing.join(", ")}: run 'sudo ${line}' and retry`);
  console.log(`bench: ${line}`);
  const install = (): number | null =>
    spawnSync("apt-get", ["install", "-y", "--no-install-recommends", ...missing], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    }).status;
  if (install() !== 0) {
    spawnSync("apt-get", ["update"], { stdio: "inherit" });
    if (install() !== 0) throw new Error(`${line} failed`);
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
    varnish: firstLine("varnishd", ["-V"]).replace(/^varnishd \((varnish-[\d.]+).*$/, "$1"),
    vips: firstLine("vipsthumbnail", ["--vips-version"]),
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
