import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PROBE = fileURLToPath(new URL("../helpers/app-lifecycle-probe.ts", import.meta.url));

interface ProbeReport {
  readonly outcomes: readonly string[];
  /** Sockets, servers and timers (unref'd ones too) the apps made and left open, with where they were made. */
  readonly running: readonly string[];
  /** Apps a full garbage collection could not free. */
  readonly reachable: number;
  /** File descriptors (sockets, files) left open: `<fd> → <what /proc/self/fd says it is>`. */
  readonly openedFds: readonly string[];
}

/** Runs the scenarios in a fresh process (see app-lifecycle-probe.ts) and reads its report. */
function probe(scenarios: readonly string[]): ProbeReport {
  const run = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", PROBE, ...scenarios], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 90_000,
  });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "{}") as ProbeReport;
}

describe("app lifecycle", () => {
  it("leaves nothing running or reachable after apps are started, used and closed", () => {
    const report = probe(["plain", "plain", "plain", "directory", "redis", "redis-down"]);
    expect(report.outcomes).toEqual([
      "plain: 200",
      "plain: 200",
      "plain: 200",
      "directory: 200",
      "redis: 200",
      "redis-down: 200",
    ]);
    expect(report.running).toEqual([]);
    expect(report.reachable).toBe(0);
    expect(report.openedFds).toEqual([]);
  }, 120_000);

  it("releases what a failed start had built: the origin clients, Redis, the HTTP server and the metrics", () => {
    const report = probe(["port-taken", "redis-down-port-taken", "disk-unusable"]);
    expect(report.outcomes).toEqual([
      "port-taken: EADDRINUSE",
      "redis-down-port-taken: EADDRINUSE",
      "disk-unusable: ENOTDIR",
    ]);
    expect(report.running).toEqual([]);
    expect(report.reachable).toBe(0);
    expect(report.openedFds).toEqual([]);
  }, 120_000);
});
