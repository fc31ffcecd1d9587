import cluster from "node:cluster";
import type { Worker } from "node:cluster";
import { AggregatorRegistry } from "prom-client";
import { mergeStats } from "./cluster-stats.ts";
import type { StatsSnapshot } from "./cluster-stats.ts";
import type { Logger } from "../observability/log.ts";
import type { Metrics } from "../observability/metrics.ts";

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
  answerClusterQueries();
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

/*
 * Cluster-wide /metrics and /api/stats. A scrape reaches one worker, which asks the primary over IPC; the primary
 * gathers every worker's figures (prom-client's AggregatorRegistry for metrics, its own round for stats) and answers
 * the worker that asked. Without this each answer described one worker at random, and Prometheus read the counters
 * jumping between workers as resets.
 */

/** Worker -> primary: what a request to this worker needs from all of them. */
interface Ask {
  readonly type: "imagika:ask";
  readonly id: number;
  readonly what: "metrics" | "stats";
}
/** Primary -> the worker that asked. */
interface Answer {
  readonly type: "imagika:answer";
  readonly id: number;
  readonly body?: string;
  readonly stats?: StatsSnapshot;
  readonly error?: string;
}
/** Primary -> every worker, and their replies. */
interface StatsRequest {
  readonly type: "imagika:stats-request";
  readonly round: number;
}
interface StatsReply {
  readonly type: "imagika:stats-reply";
  readonly round: number;
  readonly stats: StatsSnapshot;
}

/** How long the primary waits for the workers' stats, and a worker for the primary's answer. */
const STATS_WAIT_MS = 2000;
const ANSWER_WAIT_MS = 7000; // prom-client's own wait for the workers' metrics is 5 s

function isMessage<T extends { type: string }>(message: unknown, type: T["type"]): message is T {
  return typeof message === "object" && message !== null && (message as { type?: unknown }).type === type;
}

function answerClusterQueries(): void {
  const aggregator = new AggregatorRegistry(); // also listens for the workers' metric replies
  let round = 0;
  const rounds = new Map<number, (reply: StatsReply) => void>();
  const gatherStats = (): Promise<StatsSnapshot[]> => {
    const id = round++;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w?.isConnected() === true);
    const replies: StatsSnapshot[] = [];
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        rounds.delete(id);
        resolve(replies);
      };
      const timer = setTimeout(finish, STATS_WAIT_MS); // a stuck or starting worker is left out, not waited for
      rounds.set(id, (reply) => {
        replies.push(reply.stats);
        if (replies.length === workers.length) finish();
      });
      if (workers.length === 0) finish();
      for (const worker of workers) worker.send({ type: "imagika:stats-request", round: id } satisfies StatsRequest);
    });
  };
  cluster.on("message", (worker, message: unknown) => {
    if (isMessage<StatsReply>(message, "imagika:stats-reply")) return void rounds.get(message.round)?.(message);
    if (!isMessage<Ask>(message, "imagika:ask")) return;
    const reply = (answer: Omit<Answer, "type" | "id">): void => {
      if (worker.isConnected()) worker.send({ type: "imagika:answer", id: message.id, ...answer } satisfies Answer);
    };
    const work =
      message.what === "metrics"
        ? aggregator.clusterMetrics().then((body) => reply({ body }))
        : gatherStats().then((all) => reply({ stats: mergeStats(all) }));
    work.catch((error: unknown) => reply({ error: error instanceof Error ? error.message : String(error) }));
  });
}

/** What a worker's /metrics and /api/stats answer with under `--workers`. */
export interface ClusterView {
  /** Every worker's metrics in one exposition, each series labelled with its `worker` id. */
  render(): Promise<{ contentType: string; body: string }>;
  /** Every worker's /api/stats merged (mergeStats). */
  stats(): Promise<StatsSnapshot>;
  /** Stops answering the primary's stats requests (the app is closing). */
  close(): void;
}

/**
 * In a `--workers` worker: labels this worker's metrics with `worker="<id>"` (so series from different workers stay
 * apart instead of being summed into counters that drop when a worker is replaced), lets the primary collect them
 * and `snapshot`, and returns the view that asks the primary for everyone's. When the primary does not answer, the
 * view answers with this worker's own figures and logs a warning. Undefined outside a cluster worker.
 */
export function joinCluster(options: {
  readonly metrics: Metrics;
  readonly snapshot: () => StatsSnapshot;
  readonly log: Logger;
}): ClusterView | undefined {
  const self = cluster.worker;
  if (!cluster.isWorker || self === undefined) return undefined;
  const { metrics, snapshot, log } = options;
  metrics.registry.setDefaultLabels({ worker: String(self.id) });
  AggregatorRegistry.setRegistries(metrics.registry);
  new AggregatorRegistry(); // answers the primary's requests for this worker's metrics
  let nextId = 0;
  const waiting = new Map<number, (answer: Answer) => void>();
  const onMessage = (message: unknown): void => {
    if (isMessage<StatsRequest>(message, "imagika:stats-request")) {
      process.send?.({ type: "imagika:stats-reply", round: message.round, stats: snapshot() } satisfies StatsReply);
    } else if (isMessage<Answer>(message, "imagika:answer")) {
      waiting.get(message.id)?.(message);
    }
  };
  process.on("message", onMessage);
  const ask = (what: Ask["what"]): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`the primary did not answer for ${what} within ${ANSWER_WAIT_MS} ms`));
      }, ANSWER_WAIT_MS);
      waiting.set(id, (answer) => {
        clearTimeout(timer);
        waiting.delete(id);
        if (answer.error !== undefined) reject(new Error(answer.error));
        else resolve(answer);
      });
      process.send?.({ type: "imagika:ask", id, what } satisfies Ask);
    });
  const warn = (what: string, error: unknown): void =>
    log.warn({ err: String(error) }, `cluster-wide ${what} unavailable; answering with this worker's`);
  return {
    render: () =>
      ask("metrics").then(
        (answer) => ({ contentType: metrics.registry.contentType, body: answer.body ?? "" }),
        (error: unknown) => {
          warn("metrics", error);
          return metrics.render();
        },
      ),
    stats: () =>
      ask("stats").then(
        (answer) => answer.stats ?? {},
        (error: unknown) => {
          warn("stats", error);
          return { ...snapshot(), workers: 1, clusterError: String(error) };
        },
      ),
    close: () => void process.off("message", onMessage),
  };
}
