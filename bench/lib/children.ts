import { spawn } from "node:child_process";
import type { ChildProcess, SpawnOptions } from "node:child_process";

/** Every child this bench started and has not seen exit: stopped on Ctrl-C, errors and normal exit. */
const running = new Set<ChildProcess>();
/** Processes we did not spawn directly but must not leave behind (nginx's worker, forked by its master). */
const extraPids = new Set<number>();

/** spawn() that registers the child for cleanup. */
export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, options);
  running.add(child);
  child.once("exit", () => running.delete(child));
  child.once("error", () => running.delete(child));
  return child;
}

export function trackPid(pid: number): void {
  extraPids.add(pid);
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGTERM, then SIGKILL after `timeoutMs` if the child is still there. */
export async function stopChild(child: ChildProcess, timeoutMs = 5000): Promise<void> {
  if (!isRunning(child)) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  await exited;
  clearTimeout(timer);
}

/** Stops every tracked child still running (SIGTERM, SIGKILL after `timeoutMs`). */
export async function stopAllChildren(timeoutMs = 5000): Promise<void> {
  await Promise.all([...running].map((child) => stopChild(child, timeoutMs)));
}

function killEverythingNow(): void {
  for (const child of running) if (isRunning(child)) child.kill("SIGKILL");
  for (const pid of extraPids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/**
 * Stops every tracked child on SIGINT/SIGTERM (gracefully, 3 s at most), on an uncaught error and at exit.
 * `onInterrupt` runs first (e.g. to remove the temp dir).
 */
export function installCleanup(onInterrupt: () => void): void {
  let isStopping = false;
  const stopAll = async (signal: string): Promise<void> => {
    if (isStopping) {
      killEverythingNow();
      process.exit(130);
    }
    isStopping = true;
    console.error(`\nbench: ${signal}: stopping ${running.size} child process(es)`);
    await stopAllChildren(3000);
    killEverythingNow();
    onInterrupt();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.on("SIGINT", () => void stopAll("SIGINT"));
  process.on("SIGTERM", () => void stopAll("SIGTERM"));
  process.on("exit", killEverythingNow);
}
