import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
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
    expect(result.stderr).toContain("--cache-max-bytes: expected a byte size");
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

  // V8's memory reducer ran full collections inside cold transforms (bin/imagika.js says why): `npm start`, the launch
  // the README gives, turns it off, and a proxy started that way runs with it off.
  it("starts the proxy with V8's memory reducer off, as npm start does", async () => {
    const packageJson = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      scripts: Record<string, string>;
    };
    const start = packageJson.scripts.start ?? "";
    expect(start).toMatch(/^node --no-memory-reducer --import tsx src\/main\.ts start$/);
    // The same flags, `proxy` instead of `start` (which would also generate samples and start an origin): Node accepts
    // them (an unknown V8 flag stops it at start) and the proxy comes up.
    const flags = start.split(" ").slice(1, -2);
    const child = spawn(process.execPath, [...flags, "src/main.ts", "proxy", "--port", "0", "--origin", tmpdir()], {
      cwd: fileURLToPath(new URL("../..", import.meta.url)),
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (chunk: Buffer) => {
          if (chunk.toString().includes("listening")) resolve();
        });
        child.on("exit", (code) => reject(new Error(`the proxy exited with ${code}`)));
      });
    } finally {
      child.kill("SIGTERM");
    }
  });
});
