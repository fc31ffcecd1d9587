import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { buildConfig, defaultSettings, loadConfig } from "../../../src/config/config.ts";
import {
  BASELINE_BYTES,
  MARGIN_SHARE,
  MIN_WORK_BYTES,
  planMemory,
  readCgroupMemoryLimit,
} from "../../../src/config/memory.ts";
import { ConfigError } from "../../../src/config/settings.ts";

const MiB = 1024 * 1024;

describe("planMemory", () => {
  it("derives the cache budget from --memory-limit alone: half of what baseline and margin leave", () => {
    const plan = planMemory({ memoryLimit: 512 * MiB, cacheMaxBytes: undefined, cgroupLimit: undefined, workers: 1 });
    expect(plan).toMatchObject({ limitBytes: 512 * MiB, source: "flag" });
    const usable = 512 * MiB * (1 - MARGIN_SHARE) - BASELINE_BYTES;
    expect("cacheMaxBytes" in plan && plan.cacheMaxBytes).toBe(Math.floor(usable / 2));
  });

  it("derives the limit from the cache budget when there is no limit and no cgroup", () => {
    const plan = planMemory({ memoryLimit: undefined, cacheMaxBytes: 64 * MiB, cgroupLimit: undefined, workers: 1 });
    expect(plan).toMatchObject({ cacheMaxBytes: 64 * MiB, source: "cache" });
    expect("limitBytes" in plan && plan.limitBytes).toBe(
      Math.ceil((64 * MiB + BASELINE_BYTES + MIN_WORK_BYTES) / (1 - MARGIN_SHARE)),
    );
  });

  it("takes 90% of a container's cgroup limit, divided among workers", () => {
    const plan = planMemory({ memoryLimit: undefined, cacheMaxBytes: undefined, cgroupLimit: 2048 * MiB, workers: 2 });
    expect(plan).toMatchObject({ limitBytes: Math.floor((2048 * MiB * 0.9) / 2), source: "cgroup" });
  });

  it("refuses a cache budget that does not fit in the limit, saying how much would", () => {
    const plan = planMemory({ memoryLimit: 512 * MiB, cacheMaxBytes: 512 * MiB, cgroupLimit: undefined, workers: 1 });
    expect(plan).toHaveProperty("problem");
    expect((plan as { problem: string }).problem).toMatch(/--cache-max-bytes 512 MiB does not fit .* at most 205 MiB/);
  });

  it("refuses a limit too small for the baseline and one transform", () => {
    const plan = planMemory({ memoryLimit: 200 * MiB, cacheMaxBytes: undefined, cgroupLimit: undefined, workers: 1 });
    expect((plan as { problem: string }).problem).toMatch(/too small: Imagika needs at least 285 MiB/);
  });
});

describe("memory settings", () => {
  it("keeps the 512 MiB cache by default outside a container, and a limit derived from it", () => {
    const config = buildConfig(defaultSettings(), { cgroupLimit: undefined });
    expect(config.cache.maxBytes).toBe(512 * MiB);
    expect(config.memory.source).toBe("cache");
    expect(config.memory.limitBytes).toBeGreaterThan(512 * MiB + BASELINE_BYTES);
  });

  it("accepts --memory-limit as a size and auto; a cache that cannot fit stops the start with one message", () => {
    expect(loadConfig({ IMAGIKA_MEMORY_LIMIT: "1GiB" }, []).memory).toEqual({ limitBytes: 1024 * MiB, source: "flag" });
    expect(() => loadConfig({}, ["--memory-limit", "lots"])).toThrow(/--memory-limit: expected auto or a byte size/);
    expect(() => loadConfig({}, ["--memory-limit", "512MiB", "--cache-max-bytes", "1GiB"])).toThrow(ConfigError);
  });
});

describe("readCgroupMemoryLimit", () => {
  let root: string | undefined;
  afterEach(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });
  const tree = (files: Record<string, string>): string => {
    root = mkdtempSync(join(tmpdir(), "imagika-cgroup-"));
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    return root;
  };

  it("reads cgroup v2 memory.max of the process's group, and 'max' as no limit", () => {
    const dir = tree({ "self-cgroup": "0::/kubepods/pod1\n", "sys/kubepods/pod1/memory.max": "1073741824\n" });
    expect(readCgroupMemoryLimit(join(dir, "sys"), join(dir, "self-cgroup"))).toBe(1024 * MiB);
    const unlimited = tree({ "self-cgroup": "0::/\n", "sys/memory.max": "max\n" });
    expect(readCgroupMemoryLimit(join(unlimited, "sys"), join(unlimited, "self-cgroup"))).toBeUndefined();
  });

  it("reads cgroup v1 memory.limit_in_bytes, and a page-rounded 2^63 as no limit", () => {
    const dir = tree({
      "self-cgroup": "5:cpu:/\n4:memory:/docker/abc\n0::/\n",
      "sys/memory/docker/abc/memory.limit_in_bytes": "536870912\n",
    });
    expect(readCgroupMemoryLimit(join(dir, "sys"), join(dir, "self-cgroup"))).toBe(512 * MiB);
    const unlimited = tree({
      "self-cgroup": "4:memory:/\n",
      "sys/memory/memory.limit_in_bytes": "9223372036854771712\n",
    });
    expect(readCgroupMemoryLimit(join(unlimited, "sys"), join(unlimited, "self-cgroup"))).toBeUndefined();
  });

  it("is undefined when there is no cgroup file at all", () => {
    expect(readCgroupMemoryLimit("/nonexistent-root", "/nonexistent-self")).toBeUndefined();
  });
});
