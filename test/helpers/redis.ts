import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { createClient } from "redis";

/** The Redis every machine here runs (CI too). */
export const SHARED_REDIS_URL = process.env.IMAGIKA_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** A connected client to the shared Redis; throws (fails the test) when it is absent, never skips. */
export async function connectRedis(url = SHARED_REDIS_URL) {
  const client = createClient({ url, socket: { connectTimeout: 2000, reconnectStrategy: false } });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new Error(`these tests need Redis at ${url} (start redis-server); got: ${String(error)}`, { cause: error });
  }
  return client;
}

export type TestRedisClient = Awaited<ReturnType<typeof connectRedis>>;

/** A key prefix no other test run uses: `imagika-test-<random>:`. */
export function uniquePrefix(): string {
  return `imagika-test-${randomBytes(6).toString("hex")}:`;
}

/** Deletes every key under `prefix`. */
export async function deletePrefix(client: TestRedisClient, prefix: string): Promise<void> {
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
    if (keys.length > 0) await client.unlink(keys);
  }
}

/** A TCP port free right now on 127.0.0.1 (the OS picks it; the small reuse race is acceptable in tests). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  /** Kills the server by its PID (SIGKILL: like a crash) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty: it persists nothing). */
  start(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open and nothing is answered, as a stalled Redis. */
  freeze(): void;
  /** Lets a frozen server go on (SIGCONT). */
  thaw(): void;
}

/** A redis-server of this test's own on a free port, so it can be killed without touching the shared one. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore",
    });
    const url = `redis://127.0.0.1:${port}`;
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        const client = await connectRedis(url);
        await client.close();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    throw new Error(`private redis-server on port ${port} did not start (is redis-server installed?)`);
  };
  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGKILL");
    await exited;
  };
  const signal = (name: NodeJS.Signals): void => {
    if (child?.exitCode === null) child.kill(name);
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: async () => {
      signal("SIGCONT"); // a frozen process would not act on SIGKILL's exit until continued
      await stop();
    },
    start,
    freeze: () => signal("SIGSTOP"),
    thaw: () => signal("SIGCONT"),
  };
}

/** Waits (up to 5 s) until a connection made by createRedisConnection is ready; throws otherwise. */
export async function untilReady(connection: { readonly isReady: boolean }): Promise<void> {
  for (let i = 0; i < 250 && !connection.isReady; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  if (!connection.isReady) throw new Error("the Redis connection did not become ready within 5 s");
}
