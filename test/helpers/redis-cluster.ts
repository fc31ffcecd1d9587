import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient, createCluster } from "redis";
import { freePort } from "./redis.ts";

const run = promisify(execFile);

/** A Redis Cluster of this test's own: three masters on free ports (and a replica each if asked), nothing persisted. */
export interface TestRedisCluster {
  /** `redis://127.0.0.1:<port>` of each master, in start order. */
  readonly urls: readonly string[];
  readonly ports: readonly number[];
  /** `redis-cli -p <port> <args>` against one node; its trimmed output. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** Keys held by each master (DBSIZE), in port order. */
  keyCounts(): Promise<number[]>;
  /** Kills one node (SIGKILL: a crash) and waits for it to exit. */
  kill(port: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts three `redis-server --cluster-enabled yes` on free ports, joins them with `redis-cli --cluster create` and
 * waits until every node reports `cluster_state:ok`. Throws (fails the test, never skips) without redis-server.
 * `ports`: where to start them (a test that points a proxy at the cluster before it exists); default: free ones.
 * `replicas`: 1 starts six nodes, three masters and a replica of each (for failover tests).
 */
export async function startRedisCluster(
  ports: readonly number[] = [],
  options: { readonly replicas?: 0 | 1 } = {},
): Promise<TestRedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), "imagika-redis-cluster-"));
  const replicas = options.replicas ?? 0;
  if (ports.length === 0) ports = await Promise.all(Array.from({ length: 3 * (1 + replicas) }, () => freePort()));
  const children: ChildProcess[] = [];
  const byPort = new Map<number, ChildProcess>();
  const killChild = async (child: ChildProcess): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  };
  const cli = async (port: number, ...args: string[]): Promise<string> => {
    const { stdout } = await run("redis-cli", ["-p", String(port), ...args], { timeout: 10_000 });
    return stdout.trim();
  };
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(killChild));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      // A directory per node: a replica's full sync renames the RDB it received to dump.rdb in its --dir and then
      // loads it, so nodes sharing a directory could load another master's snapshot (seen: a replica in sync by
      // offset holding its neighbour's keys, and a failover that lost a third of the entries).
      const nodeDir = join(dir, String(port));
      await mkdir(nodeDir);
      const child = spawn(
        "redis-server",
        [
          "--port",
          String(port),
          "--bind",
          "127.0.0.1",
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          join(nodeDir, "nodes.conf"),
          "--cluster-node-timeout",
          "2000",
          "--dir",
          nodeDir,
          "--save",
          "",
          "--appendonly",
          "no",
        ],
        { stdio: "ignore" },
      );
      children.push(child);
      byPort.set(port, child);
    }
    for (const port of ports) await waitFor(async () => (await cli(port, "PING")) === "PONG", `node ${port} up`);
    await run(
      "redis-cli",
      [
        "--cluster",
        "create",
        ...ports.map((port) => `127.0.0.1:${port}`),
        "--cluster-replicas",
        String(replicas),
        "--cluster-yes",
      ],
      { timeout: 30_000 },
    );
    for (const port of ports) {
      await waitFor(async () => (await cli(port, "CLUSTER", "INFO")).includes("cluster_state:ok"), `node ${port} ok`);
    }
  } catch (error) {
    await stop();
    throw new Error(`could not start a Redis Cluster (needs redis-server and redis-cli): ${String(error)}`, {
      cause: error,
    });
  }
  return {
    urls: ports.map((port) => `redis://127.0.0.1:${port}`),
    ports,
    cli,
    keyCounts: () => Promise.all(ports.map(async (port) => Number(await cli(port, "DBSIZE")))),
    kill: async (port) => {
      const child = byPort.get(port);
      if (child) await killChild(child);
    },
    stop,
  };
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      if (await check()) return;
    } catch {
      /* not yet */
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * The shared Redis of a scale-out test, whichever kind it is: how instances are pointed at it and how a test looks
 * inside it. On a cluster, instance `index` is given one seed node of its own (`index` mod 3), so that instances
 * discover the cluster from different nodes and their pub/sub connections sit on different nodes.
 */
export interface SharedRedis {
  readonly kind: "single" | "cluster";
  settingsFor(index: number): { redisUrl: string } | { redisCluster: string[] };
  /** Every key matching `pattern`, over every master. */
  keys(pattern: string): Promise<string[]>;
  get(key: string): Promise<string | null>;
  /** PUBLISHes `messages` in one MULTI (one node), so they are sent back to back. */
  publishAtOnce(channel: string, messages: readonly string[]): Promise<void>;
  deletePrefix(prefix: string): Promise<void>;
  close(): Promise<void>;
}

export async function sharedSingleRedis(url: string): Promise<SharedRedis> {
  const client = createClient({ url, socket: { connectTimeout: 2000, reconnectStrategy: false } });
  client.on("error", () => undefined);
  await client.connect().catch((error: unknown) => {
    throw new Error(`these tests need Redis at ${url} (start redis-server); got: ${String(error)}`, { cause: error });
  });
  const keys = async (pattern: string): Promise<string[]> => {
    const found: string[] = [];
    for await (const batch of client.scanIterator({ MATCH: pattern, COUNT: 500 })) found.push(...batch);
    return found;
  };
  return {
    kind: "single",
    settingsFor: () => ({ redisUrl: url }),
    keys,
    get: (key) => client.get(key),
    async publishAtOnce(channel, messages) {
      const multi = client.multi();
      for (const message of messages) multi.publish(channel, message);
      await multi.exec();
    },
    async deletePrefix(prefix) {
      const found = await keys(`${prefix}*`);
      if (found.length > 0) await client.unlink(found);
    },
    close: () => client.close(),
  };
}

export async function sharedRedisCluster(cluster: TestRedisCluster): Promise<SharedRedis> {
  const client = createCluster({ rootNodes: cluster.urls.map((url) => ({ url })) });
  client.on("error", () => undefined);
  await client.connect();
  const keys = async (pattern: string): Promise<string[]> => {
    const found: string[] = [];
    for (const master of client.masters) {
      const node = await client.nodeClient(master);
      for await (const batch of node.scanIterator({ MATCH: pattern, COUNT: 500 })) found.push(...batch);
    }
    return found;
  };
  return {
    kind: "cluster",
    settingsFor: (index) => ({ redisCluster: [cluster.urls[index % cluster.urls.length]!] }),
    keys,
    get: (key) => client.get(key),
    async publishAtOnce(channel, messages) {
      const node = await client.nodeClient(client.masters[0]!);
      const multi = node.multi();
      for (const message of messages) multi.publish(channel, message);
      await multi.exec();
    },
    async deletePrefix(prefix) {
      await Promise.all((await keys(`${prefix}*`)).map((key) => client.unlink(key)));
    },
    close: () => client.close(),
  };
}
