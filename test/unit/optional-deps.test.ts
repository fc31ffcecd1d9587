import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** CommonJS packages a fresh process has loaded after running `code` (an ES module) with tsx, by package folder. */
function loadedPackages(code: string): string[] {
  const script = `import { createRequire } from "node:module";
${code}
const files = Object.keys(createRequire(import.meta.url).cache);
console.log(JSON.stringify([...new Set(files.map((f) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(f)?.[1]).filter(Boolean))]));`;
  const run = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 60_000,
  });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "[]") as string[];
}

describe("optional dependencies", () => {
  // The redis package (~7.6 MiB of heap) and the AWS SDK (~3 MiB) are loaded only when Redis (--redis-url, --redis-cluster) or an s3:// origin
  // asks for them: every full garbage collection marks the whole heap, and a cold 4K load runs one every few requests.
  it("leaves Redis and the AWS SDK unloaded when neither is configured", () => {
    const packages = loadedPackages(`await import("./src/app.ts");`);
    expect(packages).toContain("undici"); // the detection works: the HTTP fetcher's client is there
    expect(packages.filter((p) => p.startsWith("@redis/") || p === "redis")).toEqual([]);
    expect(packages.filter((p) => p.startsWith("@aws-sdk/") || p.startsWith("@smithy/"))).toEqual([]);
  });

  it("loads them when the modules that need them are imported", () => {
    const packages = loadedPackages(
      `await import("./src/cache/redis-connection.ts"); await import("./src/fetcher/s3-fetcher.ts");`,
    );
    expect(packages).toContain("@redis/client");
    expect(packages).toContain("@aws-sdk/client-s3");
  });
});
