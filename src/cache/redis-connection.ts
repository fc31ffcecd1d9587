import { setTimeout as sleep } from "node:timers/promises";
import { createClient, createCluster, RESP_TYPES } from "redis";
import type { RedisTarget } from "../config/config.ts";
import type { TierLogger } from "./tier-health.ts";

/**
 * Longest a Redis command may take before it counts as a failure. Loopback or same-zone round trips take ~0.1-1 ms and
 * a 1 MB value ~2-5 ms; 250 ms only fires when Redis is stalled or gone, and bounds what it can add to a request.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 250;

/** Script call arguments, as node-redis takes them. */
export interface ScriptCall {
  readonly keys: string[];
  readonly arguments: string[];
}

/** Lua scripts; each touches one key, so on a cluster it runs on the master of that key's slot. */
export interface RedisScripting {
  eval(script: string, call: ScriptCall): Promise<unknown>;
  evalSha(sha1: string, call: ScriptCall): Promise<unknown>;
}

/**
 * The commands Imagika sends, the same on one Redis and on a Redis Cluster. No key has to share a slot with another:
 * entries, locks and buckets are one key each, and multi-key UNLINKs are split by slot (node-redis's cluster client
 * does that per its request policy), so keys need no hash tags and spread over every master.
 */
export interface RedisConnection extends RedisScripting {
  /** What it points at, for logs: the URL or the seed list. */
  readonly target: string;
  readonly isReady: boolean;
  /** True once connected (a cluster: its topology discovered), false if `timeoutMs` passes first; never rejects. */
  whenReady(timeoutMs: number): Promise<boolean>;
  getBuffer(key: string): Promise<Buffer | null>;
  /** SET with an optional PX and NX; false when NX found the key taken. */
  set(
    key: string,
    value: string | Buffer,
    options?: { readonly pxMs?: number; readonly isNx?: boolean },
  ): Promise<boolean>;
  unlink(keys: readonly string[]): Promise<number>;
  /** SCAN MATCH over every master (one Redis: itself), in batches. */
  scanKeys(pattern: string): AsyncIterable<readonly string[]>;
  /** PUBLISH; on a cluster it reaches subscribers on every node (classic pub/sub is broadcast over the cluster bus). */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Listens on `channel` over a connection of its own (a subscriber can run no other command), re-subscribed by
   * node-redis after reconnects and topology changes. True once the subscription is active, false if it failed or the
   * connection was closed first; never rejects.
   */
  subscribe(channel: string, listener: (message: string) => void): Promise<boolean>;
  /** The same scripting without node-redis's per-command timeout, for callers that time their own calls. */
  readonly untimed: RedisScripting;
  close(): Promise<void>;
}

/** Reconnect backoff after a failed connection: 100 ms doubling to 2 s. */
function backoffMs(retries: number): number {
  return Math.min(100 * 2 ** retries, 2000);
}

/** Per-connection settings, the same for a single Redis and for every node of a cluster. */
const CONNECTION_DEFAULTS = {
  disableOfflineQueue: true,
  socket: { connectTimeout: 1000, reconnectStrategy: backoffMs },
} as const;

/**
 * A connection that never stalls a request: commands fail at once while disconnected (no offline queue) and after
 * REDIS_COMMAND_TIMEOUT_MS otherwise, and it reconnects in the background. It is not awaited: the proxy starts and
 * serves while Redis is still down.
 */
export function createRedisConnection(target: RedisTarget, log: TierLogger): RedisConnection {
  return target.kind === "single" ? connectSingle(target.url, log) : connectCluster(target.seeds, log);
}

/** Logs the first error of an outage and its end: one line each, however many commands fail in between. */
function outageLogger(log: TierLogger, target: string) {
  let isDown = false;
  return {
    down(error: unknown): void {
      if (isDown) return;
      isDown = true;
      log.warn(
        { target, err: error instanceof Error ? error.message : String(error) },
        "redis connection lost; reconnecting",
      );
    },
    up(): void {
      if (isDown) log.info({ target }, "redis connection back");
      isDown = false;
    },
  };
}

function connectSingle(url: string, log: TierLogger): RedisConnection {
  const client = createClient({ url, ...CONNECTION_DEFAULTS, commandOptions: { timeout: REDIS_COMMAND_TIMEOUT_MS } });
  const outage = outageLogger(log, withoutPassword(url));
  client.on("error", (error: unknown) => outage.down(error));
  client.on("ready", () => outage.up());
  client.connect().catch(() => undefined); // keeps retrying by itself; errors arrive on "error"
  const buffers = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  const untimed = client.withCommandOptions({ timeout: 0 });
  const subscribers: (typeof client)[] = [];
  return {
    target: withoutPassword(url),
    get isReady() {
      return client.isReady;
    },
    async whenReady(timeoutMs) {
      if (client.isReady) return true;
      // Not events.once: it rejects on the "error" events a connection that is still trying emits.
      let onReady: (() => void) | undefined;
      const ready = new Promise<boolean>((resolve) => client.once("ready", (onReady = () => resolve(true))));
      const isReady = await withTimeout(ready, timeoutMs);
      if (onReady) client.off("ready", onReady);
      return isReady;
    },
    ...commandsOf(client, buffers, untimed),
    scanKeys: (pattern) => client.scanIterator({ MATCH: pattern, COUNT: 500 }),
    subscribe(channel, listener) {
      // The subscriber keeps node-redis's offline queue, so SUBSCRIBE waits for the first connection.
      const subscriber = client.duplicate({ disableOfflineQueue: false });
      subscribers.push(subscriber);
      subscriber.on("error", () => undefined); // the main connection logs outages
      subscriber.connect().catch(() => undefined);
      return subscribed(subscriber.subscribe(channel, listener), log);
    },
    async close() {
      await Promise.all([...subscribers, client].map(closeClient));
    },
  };
}

function connectCluster(seeds: readonly string[], log: TierLogger): RedisConnection {
  const target = seeds.map(withoutPassword).join(",");
  const defaults = nodeDefaultsOf(seeds[0] ?? "redis://127.0.0.1:6379");
  const cluster = createCluster({
    rootNodes: seeds.map((url) => ({ url })),
    defaults,
    commandOptions: { timeout: REDIS_COMMAND_TIMEOUT_MS },
  });
  const outage = outageLogger(log, target);
  cluster.on("error", (error: unknown) => outage.down(error));
  cluster.on("node-error", (error: unknown) => outage.down(error));
  cluster.on("node-ready", () => outage.up());
  const closing = new AbortController();
  const connected = connectClusterUntilClosed(cluster, closing.signal);
  const buffers = cluster.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  const untimed = cluster.withCommandOptions({ timeout: 0 });
  const subscribers: (typeof cluster)[] = [];
  return {
    target,
    get isReady() {
      return cluster.isReady;
    },
    whenReady: (timeoutMs) => withTimeout(connected, timeoutMs),
    ...commandsOf(cluster, buffers, untimed),
    async *scanKeys(pattern) {
      for (const master of cluster.masters) {
        const node = await cluster.nodeClient(master);
        yield* node.scanIterator({ MATCH: pattern, COUNT: 500 });
      }
    },
    async subscribe(channel, listener) {
      // The cluster client keeps its own pub/sub connection to one node and moves it when that node goes away.
      const subscriber = cluster.duplicate({ defaults: { ...defaults, disableOfflineQueue: false } });
      subscribers.push(subscriber);
      subscriber.on("error", () => undefined); // the main connection logs outages
      subscriber.on("node-error", () => undefined);
      if (!(await connectClusterUntilClosed(subscriber, closing.signal))) return false;
      return subscribed(subscriber.subscribe(channel, listener), log);
    },
    async close() {
      closing.abort();
      await connected;
      await Promise.all([...subscribers, cluster].map(closeClient));
    },
  };
}

/** The commands a single client and a cluster client both have, with the same node-redis signatures. */
interface NodeRedisCommands extends RedisScripting {
  set(key: string, value: string | Buffer, options: ReturnType<typeof setOptionsOf>): Promise<string | null>;
  unlink(keys: string[]): Promise<number>;
  publish(channel: string, message: string): Promise<number>;
}

/** The part of a RedisConnection that is the same over one Redis and a cluster. */
function commandsOf(
  client: NodeRedisCommands,
  buffers: { get(key: string): Promise<Buffer | null> },
  untimed: RedisScripting,
): Pick<RedisConnection, "getBuffer" | "set" | "unlink" | "publish" | "eval" | "evalSha" | "untimed"> {
  return {
    getBuffer: (key) => buffers.get(key),
    set: async (key, value, options = {}) => (await client.set(key, value, setOptionsOf(options))) === "OK",
    unlink: (keys) => (keys.length === 0 ? Promise.resolve(0) : client.unlink([...keys])),
    publish: async (channel, message) => void (await client.publish(channel, message)),
    eval: (script, call) => client.eval(script, call),
    evalSha: (sha1, call) => client.evalSha(sha1, call),
    untimed: {
      eval: (script, call) => untimed.eval(script, call),
      evalSha: (sha1, call) => untimed.evalSha(sha1, call),
    },
  };
}

/** True once SUBSCRIBE is acknowledged; false (logged) if it failed. */
function subscribed(subscribing: Promise<void>, log: TierLogger): Promise<boolean> {
  return subscribing.then(
    () => true,
    (error: unknown) => {
      log.warn({ err: String(error) }, "redis: subscribe failed");
      return false;
    },
  );
}

/**
 * Settings of the connections to the nodes a cluster client discovers: they inherit nothing from the seed URLs, so
 * the login and TLS of the seeds (config checks they share them) are passed on here.
 */
function nodeDefaultsOf(seed: string) {
  const url = new URL(seed);
  const isTls = url.protocol === "rediss:";
  return {
    ...CONNECTION_DEFAULTS,
    ...(url.username !== "" ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password !== "" ? { password: decodeURIComponent(url.password) } : {}),
    socket: isTls ? { ...CONNECTION_DEFAULTS.socket, tls: true as const } : CONNECTION_DEFAULTS.socket,
  };
}

/** The URL for logs: a password never reaches them. */
function withoutPassword(seed: string): string {
  const url = new URL(seed);
  if (url.password !== "") url.password = "***";
  return url.toString();
}

/**
 * Longest one discovery of a cluster's topology may take before it starts over. A healthy one takes a few round trips
 * (~5 ms on loopback); node connections time out after 1 s (connectTimeout), so 3 s is never a slow but working one.
 */
const CLUSTER_CONNECT_ATTEMPT_MS = 3000;

/**
 * Connects a cluster client, retried with the same backoff until it succeeds or the connection is closed; true once
 * connected. Two ways node-redis's `connect()` fails to get there by itself: it gives up when no seed answers (it has
 * no topology to retry with), and it waits for a connection to every master the seed named, retrying a dead one for
 * ever. The second holds a proxy that starts while a master is down (the other nodes still name it until its replica
 * takes over) off the cluster after the failover too (seen: still not connected 20 s later), so an attempt that takes
 * longer than CLUSTER_CONNECT_ATTEMPT_MS is abandoned and discovery starts over from a fresh view of the topology.
 */
async function connectClusterUntilClosed(
  cluster: { connect(): Promise<unknown>; destroy(): void; readonly isOpen: boolean },
  closed: AbortSignal,
): Promise<boolean> {
  for (let retries = 0; !closed.aborted; retries++) {
    const attempt = cluster.connect().then(
      () => true,
      () => false,
    );
    if (await withTimeout(attempt, CLUSTER_CONNECT_ATTEMPT_MS, closed)) return true;
    if (cluster.isOpen) cluster.destroy(); // a stuck attempt: destroy() makes its connect() reject ("Cluster closed")
    await attempt;
    await sleep(backoffMs(retries), undefined, { signal: closed, ref: false }).catch(() => undefined);
  }
  return false;
}

/** `promise`'s value, or false once `timeoutMs` has passed or `signal` aborts. */
export async function withTimeout(
  promise: Promise<boolean>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
    onAbort = () => resolve(false);
    if (signal?.aborted === true) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, timedOut]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}

function setOptionsOf(options: { readonly pxMs?: number; readonly isNx?: boolean }) {
  return {
    ...(options.isNx === true ? { condition: "NX" as const } : {}),
    ...(options.pxMs !== undefined ? { expiration: { type: "PX" as const, value: options.pxMs } } : {}),
  };
}

/** Quits politely when connected; otherwise drops the socket and stops reconnecting (close() would wait). */
async function closeClient(client: {
  readonly isReady: boolean;
  readonly isOpen: boolean;
  close(): Promise<unknown>;
  destroy(): void;
}): Promise<void> {
  if (client.isReady) await client.close().catch(() => client.destroy());
  else if (client.isOpen) client.destroy();
}
