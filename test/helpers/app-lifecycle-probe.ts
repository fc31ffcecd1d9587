/**
 * Run as its own process (`node --expose-gc --import tsx app-lifecycle-probe.ts <scenario>...`): starts and stops the
 * proxy as each scenario says, then prints one JSON line saying what the apps left behind:
 *
 * - `running`: async resources (sockets, servers, timers, unref'd ones too) made while the scenarios ran and not
 *   closed, by type and where they were made;
 * - `reachable`: of the clocks handed to each app (AppOptions.now, held by its caches and so by its metrics), how many
 *   a full garbage collection could not free: something still referenced the app (a listener, an observer, a timer);
 * - `openedFds`: file descriptors open now that were not before the scenarios ran.
 *
 * A process of its own: the counts must not mix with the test runner's resources, and --expose-gc is needed.
 */
import { createHook } from "node:async_hooks";
import { readdirSync, readlinkSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import type { AddressInfo, Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { createApp } from "../../src/app.ts";
import { buildConfig, defaultSettings } from "../../src/config/config.ts";
import { parseOriginSpec } from "../../src/config/proxy-settings.ts";
import type { ProxySettings } from "../../src/config/proxy-settings.ts";
import { startOriginServer } from "../../origin-server/server.ts";
import { makeJpeg } from "./images.ts";
import { SHARED_REDIS_URL, freePort, uniquePrefix } from "./redis.ts";

/** How long closes may take to finish after close() resolved (FINs, the fetcher's deadline timers). */
const SETTLE_MS = 1200;

/** Async resources that are not what a closed app could leave running: promises and callbacks already queued. */
const TRANSIENT = new Set(["PROMISE", "TickObject", "Immediate", "Microtask"]);

const dir = await mkdtemp(join(tmpdir(), "imagika-lifecycle-"));
await writeFile(join(dir, "a.jpg"), await makeJpeg(64, 48, 1));
const origin = await startOriginServer({ dir, port: 0, host: "127.0.0.1", latencyMs: 0, bandwidthBytesPerSecond: 0 });
const taken: Server = createServer();
await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
const takenPort = (taken.address() as AddressInfo).port;
const closedPort = await freePort();

const clocks: WeakRef<() => number>[] = [];

/**
 * Starts the proxy in front of the HTTP origin (or `originPath`) with these settings; resolves with the start's error
 * code, or with the status of one image request once close() has resolved.
 */
async function startAndStop(overrides: Partial<ProxySettings>, originPath = origin.url): Promise<string> {
  const spec = parseOriginSpec(originPath);
  if (!spec.ok) throw new Error("bad origin");
  const config = buildConfig({
    ...defaultSettings(),
    port: 0,
    host: "127.0.0.1",
    shutdownTimeoutMs: 2000,
    originTotalTimeoutMs: SETTLE_MS - 200, // its deadline timer ends by itself: within the wait below
    ...overrides,
    origin: spec.value,
  });
  const now = (): number => Date.now();
  clocks.push(new WeakRef(now));
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  let app;
  try {
    app = await createApp(config, { now, logger: pino({ level: "info" }, sink) });
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
  const res = await fetch(`${app.url}/img/a.jpg?w=16`);
  await res.arrayBuffer();
  await app.close();
  return String(res.status);
}

const SCENARIOS: Record<string, Partial<ProxySettings>> = {
  plain: {},
  directory: {},
  "port-taken": { port: takenPort },
  redis: { redisUrl: SHARED_REDIS_URL, redisKeyPrefix: uniquePrefix() },
  "redis-down": { redisUrl: `redis://127.0.0.1:${closedPort}` },
  "redis-down-port-taken": { redisUrl: `redis://127.0.0.1:${closedPort}`, port: takenPort },
  "disk-unusable": { diskCacheDir: "/dev/null/imagika" },
};

const running = new Map<number, { type: string; stack: string }>();
/** Waits without the wait's own timer counting as left running (Number(timer) is its async id). */
const pause = (ms: number): Promise<void> => new Promise((resolve) => running.delete(Number(setTimeout(resolve, ms))));
const openFds = (): Map<string, string> => {
  const fds = new Map<string, string>();
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      fds.set(fd, readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      /* the directory's own fd, closed by now */
    }
  }
  return fds;
};

await startAndStop({}); // warm-up: module-level singletons (the llhttp instance, sharp) are made once per process
await pause(300); // the warm-up's sockets finish closing
const fdsBefore = openFds();
const hook = createHook({
  init(asyncId, type) {
    if (TRANSIENT.has(type)) return;
    const stack = (new Error().stack ?? "")
      .split("\n")
      .slice(2)
      .filter((line) => !line.includes("node:internal"));
    running.set(asyncId, { type, stack: stack.slice(0, 4).join(" | ") });
  },
  destroy(asyncId) {
    running.delete(asyncId);
  },
});
hook.enable();
const outcomes: string[] = [];
for (const name of process.argv.slice(2)) {
  const scenario = SCENARIOS[name];
  if (!scenario) throw new Error(`unknown scenario ${name}`);
  outcomes.push(`${name}: ${await startAndStop(scenario, name === "directory" ? dir : origin.url)}`);
}
// Closes that finish on later turns (FINs, timers) are still seen, and so is whatever a leak keeps re-arming. Some
// resources (file handles, the event-loop delay histogram, synchronous randomBytes) end only when garbage collected.
await pause(SETTLE_MS);
for (let i = 0; i < 4; i++) {
  globalThis.gc?.();
  await pause(20);
}
hook.disable();

console.log(
  JSON.stringify({
    outcomes,
    running: [...running.values()].map(({ type, stack }) => `${type} at ${stack}`),
    reachable: clocks.slice(1).filter((clock) => clock.deref() !== undefined).length,
    openedFds: [...openFds()]
      .filter(([fd, target]) => fdsBefore.get(fd) !== target)
      .map(([fd, target]) => `${fd} → ${target}`),
  }),
);
await origin.close();
taken.close();
process.exit(0); // what a leak left running would keep this process alive: the report above is what counts
