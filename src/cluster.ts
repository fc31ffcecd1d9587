import cluster from "node:cluster";
import type { Worker } from "node:cluster";

/** A worker that dies sooner than this after starting is crash-looping: wait before replacing it. */
const MIN_UPTIME_MS = 5000;
const RESPAWN_DELAY_MS = 1000;

/** True in the process that should fork workers instead of serving (--workers > 1, not yet a worker). */
export function shouldForkWorkers(workers: number): boolean {
  return workers > 1 && cluster.isPrimary;
}

/**
 * `--workers N`: N copies of this command (same argv and loader flags) under node:cluster, which shares the listening
 * port (the primary accepts and hands connections round-robin). They share nothing else in memory: the disk tier
 * directory and Redis are what they have in common. A worker that exits unexpectedly is replaced; SIGTERM/SIGINT
 * is passed on (SIGINT from a terminal already reaches every worker), and the primary exits when every worker has finished its graceful shutdown.
 */
export function runWorkers(count: number): void {
  let isStopping = false;
  const startedAt = new Map<Worker, number>();
  const fork = (): void => {
    const worker = cluster.fork();
    startedAt.set(worker, performance.now());
  };
  cluster.on("exit", (worker, code, signal) => {
    const uptimeMs = performance.now() - (startedAt.get(worker) ?? 0);
    startedAt.delete(worker);
    if (isStopping) {
      if (startedAt.size === 0) process.exit(0);
      return;
    }
    console.error(`imagika: worker ${worker.process.pid} exited (${signal ?? code}); starting another`);
    setTimeout(fork, uptimeMs < MIN_UPTIME_MS ? RESPAWN_DELAY_MS : 0);
  });
  for (let i = 0; i < count; i++) fork();
  const stop = (shouldForward: boolean): void => {
    if (isStopping) process.exit(1); // second signal: do not wait any longer
    isStopping = true;
    if (startedAt.size === 0) process.exit(0);
    if (shouldForward) for (const worker of startedAt.keys()) worker.process.kill("SIGTERM");
  };
  process.on("SIGTERM", () => stop(true));
  // Ctrl-C reaches the whole process group, workers included: passing it on would count as their second signal.
  process.on("SIGINT", () => stop(false));
}
