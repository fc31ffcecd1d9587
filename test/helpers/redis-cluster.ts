import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./redis.ts";

const run = promisify(execFile);

/** A Redis Cluster of this test's own: three masters on free ports, no replicas, nothing persisted. */
export interface TestRedisCluster {
  /** `redis://127.0.0.1:<port>` of each master, in start order. */
  readonly urls: readonly string[];
  readonly ports: readonly number[];
  /** `redis-cli -p <port> <args>` against one node; its trimmed output. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** Keys held by each master (DBSIZE), in port order. */
  keyCounts(): Promise<number[]>;
  stop(): Promise<void>;
}

/**
 * Starts three `redis-server --cluster-enabled yes` on free ports, joins them with `redis-cli --cluster create` and
 * waits until every node reports `cluster_state:ok`. Throws (fails the test, never skips) without redis-server.
 */
export async function startRedisCluster(): Promise<TestRedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), "imagika-redis-cluster-"));
  const ports = [await freePort(), await freePort(), await freePort()];
  const children: ChildProcess[] = [];
  const cli = async (port: number, ...args: string[]): Promise<string> => {
    const { stdout } = await run("redis-cli", ["-p", String(port), ...args], { timeout: 10_000 });
    return stdout.trim();
  };
  const stop = async (): Promise<void> => {
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGKILL");
        await exited;
      }),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
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
          join(dir, `nodes-${port}.conf`),
          "--cluster-node-timeout",
          "2000",
          "--dir",
          dir,
          "--save",
          "",
          "--appendonly",
          "no",
        ],
        { stdio: "ignore" },
      );
      children.push(child);
    }
    for (const port of ports) await waitFor(async () => (await cli(port, "PING")) === "PONG", `node ${port} up`);
    await run(
      "redis-cli",
      ["--cluster", "create", ...ports.map((port) => `127.0.0.1:${port}`), "--cluster-replicas", "0", "--cluster-yes"],
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
