#!/usr/bin/env node
// Runs the TypeScript CLI (tsx registers the loader); works as `npx imagika ...` after `npm ci`, and is what
// `npm start` runs. Before it does, it makes sure the process starts the way Imagika is measured to run, which only
// the command line and the environment of a new process can decide:
//
// - The allocator. sharp/libvips allocate and free tens of MB per transform from many threads; glibc's malloc keeps
//   what they free (RSS 767 MiB under the mixed load with a 64 MiB cache, still 767 MiB 15 s later), jemalloc with a
//   background thread and a 1 s decay gives it back (peak 452, 185 MiB 15 s later: start-up + cache + 21 MiB); see
//   docs/operations.md#memory. jemalloc is preloaded when the library is installed (Debian: libjemalloc2), else
//   glibc is tuned (2 arenas, fixed mmap/trim thresholds: 242 MiB 15 s after). IMAGIKA_ALLOCATOR=jemalloc|glibc
//   forces one, =system keeps the environment as it is.
// - Node flags. --no-memory-reducer: V8's memory reducer takes a process whose JavaScript thread is quiet for an idle
//   one and runs full collections (2-5 in a row, 4-19 ms each); in an image proxy that thread is quiet while libvips
//   works, so they landed inside cold transforms (+20-60 ms in 3 of 24 cold requests measured with --trace-gc, none
//   without it). --expose-gc: the memory budget forces a collection when RSS nears --memory-limit, so garbage
//   Buffers are freed before more work starts. Neither flag can be set at run time nor in NODE_OPTIONS.
//
// When both are already in place (a container image sets them: see the Dockerfile), the CLI runs in this process.
// Otherwise this process starts the CLI as a child with them and passes signals on (about 40 MB of RSS for the
// launcher; a container avoids it by setting the environment and flags itself).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const NODE_FLAGS = ["--no-memory-reducer", "--expose-gc"];
const JEMALLOC_PATHS = [
  "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
  "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
  "/usr/lib64/libjemalloc.so.2",
  "/usr/lib/libjemalloc.so.2",
  "/usr/local/lib/libjemalloc.so.2",
];
const JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2";
const GLIBC_TUNING = { MALLOC_ARENA_MAX: "2", MALLOC_MMAP_THRESHOLD_: "131072", MALLOC_TRIM_THRESHOLD_: "131072" };

/** The environment the CLI should run with, or undefined when this one already is. */
function allocatorEnvironment(env) {
  const choice = (env.IMAGIKA_ALLOCATOR ?? "auto").toLowerCase();
  if (choice === "system") return undefined;
  const isSet = (env.LD_PRELOAD ?? "").includes("jemalloc") || env.MALLOC_ARENA_MAX !== undefined;
  if (isSet && choice === "auto") return undefined;
  const jemalloc = JEMALLOC_PATHS.find((path) => existsSync(path));
  if (choice !== "glibc" && jemalloc !== undefined) {
    if ((env.LD_PRELOAD ?? "").includes("jemalloc")) return undefined;
    const preload = env.LD_PRELOAD ? `${jemalloc}:${env.LD_PRELOAD}` : jemalloc;
    return { ...env, LD_PRELOAD: preload, MALLOC_CONF: env.MALLOC_CONF ?? JEMALLOC_CONF };
  }
  if (env.MALLOC_ARENA_MAX !== undefined) return undefined;
  return { ...env, ...GLIBC_TUNING };
}

const missingFlags = NODE_FLAGS.filter((flag) => !process.execArgv.includes(flag));
const childEnv = allocatorEnvironment(process.env);
if (process.env.IMAGIKA_LAUNCHED !== "1" && (childEnv !== undefined || missingFlags.length > 0)) {
  const child = spawn(
    process.execPath,
    [...process.execArgv, ...missingFlags, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    // Its own process group: a terminal's Ctrl-C reaches only this process, which passes it on once (the CLI takes a
    // second SIGINT as "stop now").
    { stdio: "inherit", env: { ...(childEnv ?? process.env), IMAGIKA_LAUNCHED: "1" }, detached: true },
  );
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => child.kill(signal));
  }
  child.on("exit", (code, signal) => {
    if (signal === null) process.exit(code ?? 1);
    process.removeAllListeners(signal); // end the way the child ended
    process.kill(process.pid, signal);
  });
} else {
  // Until the CLI takes the signals over (src/cli.ts handleSignals sets the flag), a stop request means "stop": nothing
  // is running yet. As PID 1 in a container Node would otherwise ignore a SIGTERM that comes while it loads.
  const isOwnedByCli = Symbol.for("imagika.signalsOwned");
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, () => {
      if (globalThis[isOwnedByCli] !== true) process.exit(0);
    });
  }
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/main.ts");
}
