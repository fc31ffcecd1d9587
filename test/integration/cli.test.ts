import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const BIN = fileURLToPath(new URL("../../bin/imagika.js", import.meta.url));

function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("imagika CLI", () => {
  it("lists its commands and each command's options", async () => {
    const main = await run(["--help"]);
    expect(main.code).toBe(0);
    for (const command of ["start", "proxy", "origin", "samples", "sign"]) expect(main.stdout).toContain(command);
    const proxy = await run(["proxy", "--help"]);
    expect(proxy.stdout).toContain("--cache-max-bytes");
    expect(proxy.stdout).toContain("IMAGIKA_RATE_LIMIT");
    // One description column, at least two spaces after the longest flag (long flags once ran into their text).
    const options = proxy.stdout.split("\n").filter((line) => line.startsWith("  --"));
    const columns = new Set(options.map((line) => /^ {2}--\S+(?: <value>)? {2,}/.exec(line)?.[0].length ?? -1));
    expect(options.length).toBeGreaterThan(40);
    expect([...columns]).toHaveLength(1);
    expect(columns.has(-1)).toBe(false);
  });

  it("exits 2 with one message naming every bad setting", async () => {
    const result = await run(["proxy", "--port", "http", "--cache-max-bytes", "lots", "--bogus", "1"], {
      IMAGIKA_RATE_LIMIT: "fast",
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--port: expected an integer 0-65535, got 'http'");
    expect(result.stderr).toContain("--cache-max-bytes: expected auto or a byte size");
    expect(result.stderr).toContain("--bogus: unknown option");
    expect(result.stderr).toContain("IMAGIKA_RATE_LIMIT: expected a number 0-1000000, got 'fast'");
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("refuses unknown commands", async () => {
    const result = await run(["serve"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("unknown command 'serve'");
  });

  it("prints a signed URL", async () => {
    const result = await run([
      "sign",
      "/img/photo.jpg?w=800",
      "--signing-key",
      "k",
      "--base-url",
      "https://img.example.com/",
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toMatch(/^https:\/\/img\.example\.com\/img\/photo\.jpg\?w=800&s=[\w-]{43}$/);
  });

  // bin/imagika.js says why: V8's memory reducer ran full collections inside cold transforms, glibc's malloc kept
  // what libvips freed, and the memory budget forces collections near the limit. `npm start` goes through it, and the
  // proxy it starts runs with both flags and the allocator it chose; SIGTERM to the launcher stops it gracefully.
  it("starts the proxy with the measured allocator and Node flags, as npm start does, and passes SIGTERM on", async () => {
    const packageJson = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(packageJson.scripts.start).toBe("node bin/imagika.js start");
    const { IMAGIKA_LAUNCHED: _launched, LD_PRELOAD: _preload, MALLOC_ARENA_MAX: _arenas, ...env } = process.env;
    const child = spawn(process.execPath, [BIN, "proxy", "--port", "0", "--origin", tmpdir()], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      const line = await new Promise<{ pid: number; allocator: string }>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (chunk: Buffer) => {
          out += chunk.toString();
          const listening = out.split("\n").find((text) => text.includes("listening"));
          if (listening) resolve(JSON.parse(listening) as { pid: number; allocator: string });
        });
        void exited.then((code) => reject(new Error(`the proxy exited with ${code}: ${stderr}`)));
      });
      expect(line.pid).not.toBe(child.pid); // the launcher started the proxy as its child
      const cmdline = readFileSync(`/proc/${line.pid}/cmdline`, "utf8").split("\0");
      expect(cmdline).toEqual(expect.arrayContaining(["--no-memory-reducer", "--expose-gc"]));
      const maps = readFileSync(`/proc/${line.pid}/maps`, "utf8");
      if (existsSync("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")) {
        expect(maps).toContain("libjemalloc");
        expect(line.allocator).toMatch(/^jemalloc \(background_thread:true/);
      } else {
        expect(maps).not.toContain("libjemalloc");
        expect(line.allocator).toBe("glibc malloc (MALLOC_ARENA_MAX=2)");
      }
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    expect(stderr).toContain("SIGTERM received, shutting down");
  });

  // As PID 1 in a container Node ignores a signal nobody handles: a stop while loading or starting must still stop.
  // Where the process is in its start is read off tsx's compile cache in a private TMPDIR, which it fills module by
  // module: wall-clock delays were not enough (on a loaded machine, with NODE_EXTRA_CA_CERTS set, Node alone took
  // over 200 ms to reach bin/imagika.js, and a signal before that kills any process but PID 1). `share` is the part of
  // a whole start's compiled modules to wait for: 1 module (loading), half, and all of them (the CLI owns the signals
  // and the app is starting).
  let modulesOfAStart = 0;
  it.each([
    ["while it loads", 0],
    ["as the CLI takes the signals over", 0.5],
    ["while it starts", 1],
  ])("exits 0 on SIGTERM sent %s", async (_when, share) => {
    if (modulesOfAStart === 0) {
      const full = startInPrivateTmp();
      await full.listening;
      modulesOfAStart = compiledModules(full.tmp);
      full.child.kill("SIGTERM");
      expect(await full.exited).toEqual({ code: 0, signal: null });
      expect(modulesOfAStart).toBeGreaterThan(10);
    }
    const { child, tmp, exited } = startInPrivateTmp();
    const wanted = Math.max(1, Math.floor(modulesOfAStart * share));
    for (let i = 0; i < 3000 && compiledModules(tmp) < wanted && child.exitCode === null; i++) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    child.kill("SIGTERM");
    expect(await exited).toEqual({ code: 0, signal: null });
  });
});

/** The proxy in-process (the signal reaches the CLI itself) with a TMPDIR of its own, so tsx compiles from cold. */
function startInPrivateTmp() {
  const tmp = mkdtempSync(join(tmpdir(), "imagika-cli-"));
  const env = { ...process.env, TMPDIR: tmp, IMAGIKA_ALLOCATOR: "system", IMAGIKA_LAUNCHED: "1" };
  const child = spawn(
    process.execPath,
    ["--no-memory-reducer", "--expose-gc", BIN, "proxy", "--port", "0", "--origin", tmpdir()],
    { env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const listening = new Promise<void>((resolve) => {
    const onData = (data: Buffer): void => {
      output += data.toString();
      if (output.includes("imagika proxy listening")) resolve();
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      rmSync(tmp, { recursive: true, force: true });
      resolve({ code, signal });
    }),
  );
  return { child, tmp, listening, exited };
}

/** Modules tsx has compiled into its cache under `tmp` so far. */
function compiledModules(tmp: string): number {
  try {
    return readdirSync(tmp).reduce(
      (count, name) => (name.startsWith("tsx-") ? count + readdirSync(join(tmp, name)).length : count),
      0,
    );
  } catch {
    return 0;
  }
}
