import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The container image end to end: scripts/container-smoke.sh builds the Dockerfile with podman (on a stand-in for
 * node:24-bookworm-slim it makes once and keeps), runs the proxy and an origin container, and checks readiness, a
 * WebP variant, the non-root PID 1 on jemalloc, the cgroup memory limit and a clean SIGTERM. No skip: .ci/run
 * installs podman, runc and mmdebstrap, and a machine without them fails here, naming what is missing.
 */
const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
/** Measured on the project's 2-core VMs: ~2 min with nothing cached, ~40 s with the base and layers cached. */
const SMOKE_TIMEOUT_MS = 8 * 60_000;
/** Time the script gets to remove its containers after SIGTERM before it is killed. */
const CLEANUP_MS = 30_000;

function runSmoke(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolveRun, rejectRun) => {
    // Its own process group, so a timeout reaches podman and autocannon too and the script's trap cleans up.
    const child = spawn("bash", ["scripts/container-smoke.sh"], { cwd: REPO_ROOT, detached: true });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const kill = (signal: NodeJS.Signals): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    const term = setTimeout(
      () => {
        output += `\n(container-smoke.test: no result after ${SMOKE_TIMEOUT_MS - 2 * CLEANUP_MS} ms: SIGTERM)\n`;
        kill("SIGTERM");
      },
      SMOKE_TIMEOUT_MS - 2 * CLEANUP_MS,
    );
    const killAfter = setTimeout(() => kill("SIGKILL"), SMOKE_TIMEOUT_MS - CLEANUP_MS);
    child.on("error", rejectRun);
    child.on("close", (code) => {
      clearTimeout(term);
      clearTimeout(killAfter);
      resolveRun({ code, output });
    });
  });
}

describe("container image (scripts/container-smoke.sh)", () => {
  it(
    "builds with podman, serves a WebP variant as a non-root PID 1 on jemalloc, and exits 0 on SIGTERM",
    async () => {
      const { code, output } = await runSmoke();
      expect(code, `scripts/container-smoke.sh failed:\n${output.slice(-6000)}`).toBe(0);
      const figures = /^container-smoke: figures (\{.*\})$/m.exec(output);
      expect(figures, output.slice(-3000)).not.toBeNull();
      const summary = /^container-smoke: OK[^\n]*\n((?: {2}.*\n)+)/m.exec(output);
      console.log(`container smoke figures:\n${summary?.[1] ?? figures?.[1] ?? ""}`);
    },
    SMOKE_TIMEOUT_MS,
  );
});
