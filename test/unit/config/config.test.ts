import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config/config.ts";
import { bandwidth, bytes, intList } from "../../../src/config/parsers.ts";
import { ConfigError } from "../../../src/config/settings.ts";

describe("loadConfig", () => {
  it("uses defaults when nothing is set", () => {
    const config = loadConfig({}, []);
    expect(config.port).toBe(8080);
    expect(config.cache.maxBytes).toBe(512 * 1024 * 1024);
    expect(config.http.trustProxyHops).toBe(0);
    expect(config.origin.spec).toEqual({ kind: "http", baseUrl: "http://127.0.0.1:8081/" });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.cache)).toBe(true);
  });

  it("prefers flags over IMAGIKA_* variables over defaults", () => {
    const env = { IMAGIKA_PORT: "9000", IMAGIKA_CACHE_MAX_BYTES: "1GB", IMAGIKA_RATE_LIMIT: "5" };
    const config = loadConfig(env, ["--port", "9100", "--rate-burst=7"]);
    expect(config.port).toBe(9100);
    expect(config.cache.maxBytes).toBe(1_000_000_000);
    expect(config.rateLimit).toEqual({ perSecond: 5, burst: 7, shouldFallBackLocally: true });
  });

  it("parses origins: http base URL with a prefix, s3, and a directory", () => {
    expect(loadConfig({}, ["--origin", "http://host:8081/photos"]).origin.spec).toEqual({
      kind: "http",
      baseUrl: "http://host:8081/photos/",
    });
    expect(loadConfig({}, ["--origin", "s3://bucket/pre"]).origin.spec).toEqual({
      kind: "s3",
      bucket: "bucket",
      prefix: "pre/",
    });
    expect(loadConfig({ IMAGIKA_ORIGIN: "./images" }, []).origin.spec).toEqual({ kind: "fs", root: "./images" });
  });

  it("accepts --trust-proxy bare, as a boolean or as a hop count", () => {
    expect(loadConfig({}, ["--trust-proxy"]).http.trustProxyHops).toBe(1);
    expect(loadConfig({}, ["--trust-proxy", "--port", "1"]).http.trustProxyHops).toBe(1);
    expect(loadConfig({}, ["--trust-proxy=2"]).http.trustProxyHops).toBe(2);
    expect(loadConfig({ IMAGIKA_TRUST_PROXY: "false" }, []).http.trustProxyHops).toBe(0);
  });

  it("names every bad setting in one error", () => {
    let error: unknown;
    try {
      loadConfig({ IMAGIKA_PORT: "http", IMAGIKA_CACHE_MAX_BYTES: "lots" }, [
        "--rate-limit",
        "-3",
        "--origin",
        "ftp://x/",
        "--origin-x",
        "1",
      ]);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain("IMAGIKA_PORT: expected an integer 0-65535, got 'http'");
    expect(message).toContain("IMAGIKA_CACHE_MAX_BYTES: expected auto or a byte size");
    expect(message).toContain("--rate-limit: expected a number 0-1000000, got '-3'");
    expect(message).toContain("--origin: expected an http(s):// base URL");
    expect(message).toContain("--origin-x: unknown option");
  });

  it("refuses origins with credentials", () => {
    expect(() => loadConfig({}, ["--origin", "http://user:pass@host/"])).toThrow(/without credentials/);
  });
});

describe("redis settings", () => {
  it("points at nothing, one Redis, or a Redis Cluster's seeds", () => {
    expect(loadConfig({}, []).redis).toEqual({ target: undefined, keyPrefix: "imagika:" });
    expect(loadConfig({}, ["--redis-url", "redis://cache:6379"]).redis.target).toEqual({
      kind: "single",
      url: "redis://cache:6379",
    });
    const seeds = "redis://a:7000, redis://b:7001/0,redis://c:7002/";
    expect(loadConfig({ IMAGIKA_REDIS_CLUSTER: seeds }, []).redis.target).toEqual({
      kind: "cluster",
      seeds: ["redis://a:7000", "redis://b:7001/0", "redis://c:7002/"],
    });
  });

  it.each([
    ["not a URL", "cache:7000"],
    ["another scheme", "http://a:7000"],
    ["a database other than 0 (a cluster has only 0)", "redis://a:7000/2"],
    ["a query", "redis://a:7000?db=1"],
    ["seeds with different logins", "redis://u:p@a:7000,redis://a:7001"],
    ["seeds with different schemes", "rediss://a:7000,redis://b:7001"],
  ])("refuses --redis-cluster with %s", (_what, value) => {
    expect(() => loadConfig({}, ["--redis-cluster", value])).toThrow(/--redis-cluster.*Redis Cluster nodes/);
  });

  it("never echoes a password of a URL it refuses", () => {
    const refuse = (): unknown => loadConfig({}, ["--redis-cluster", "redis://imagika:s3cret@a:7000/5"]);
    expect(refuse).toThrow(/got 'redis:\/\/imagika:\*\*\*@a:7000\/5'/);
    expect(refuse).not.toThrow(/s3cret/);
  });

  it("refuses --redis-url and --redis-cluster together, and a hash tag in a cluster's key prefix", () => {
    expect(() => loadConfig({}, ["--redis-url", "redis://a:6379", "--redis-cluster", "redis://b:7000"])).toThrow(
      /set one of them/,
    );
    expect(() => loadConfig({}, ["--redis-cluster", "redis://b:7000", "--redis-key-prefix", "{img}:"])).toThrow(
      /every key would land in one slot/,
    );
    expect(loadConfig({}, ["--redis-url", "redis://a:6379", "--redis-key-prefix", "{img}:"]).redis.keyPrefix).toBe(
      "{img}:",
    );
  });
});

describe("image option settings", () => {
  const dir = mkdtempSync(join(tmpdir(), "imagika-presets-"));
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it("are off by default", () => {
    expect(loadConfig({}, []).imageOptions).toEqual({
      presets: {},
      isPresetsOnly: false,
      allowedWidths: [],
      allowedQualities: [],
      hasClientHints: false,
    });
  });

  it("reads --presets from a JSON file, and the rest from flags or IMAGIKA_* variables", () => {
    const presets = file("ok.json", '{"thumb": "w=160&h=160&fit=cover&gravity=attention", "hero": "w=1200"}');
    const config = loadConfig({ IMAGIKA_ALLOWED_QUALITIES: "90,50,75,50" }, [
      "--presets",
      presets,
      "--presets-only",
      "--allowed-widths=1200, 160,320",
      "--client-hints",
    ]);
    expect(config.imageOptions).toEqual({
      presets: { thumb: "w=160&h=160&fit=cover&gravity=attention", hero: "w=1200" },
      isPresetsOnly: true,
      allowedWidths: [160, 320, 1200],
      allowedQualities: [50, 75, 90],
      hasClientHints: true,
    });
  });

  it.each([
    [["--presets", join(dir, "missing.json")], "--presets: expected a JSON file", "ENOENT"],
    [["--presets", "FILE:not json"], "--presets: expected a JSON file", "it is not JSON"],
    [["--presets", "FILE:[1, 2]"], "--presets: expected a JSON file", "got"],
    [["--presets", 'FILE:{"a": 1}'], "--presets: expected a JSON file", "preset 'a' is not a string"],
    [["--presets-only"], "--presets-only: no preset is defined", ""],
    [["--allowed-widths", "160,abc"], "--allowed-widths: expected comma-separated integers 1-16384", ""],
    [["--allowed-widths", "160,9000"], "--allowed-widths: 9000 exceed --max-output-dimension 8192", ""],
    [["--allowed-qualities", "0,50"], "--allowed-qualities: expected comma-separated integers 1-100", ""],
    [["--client-hints=maybe"], "--client-hints: expected true or false", ""],
  ])("refuses %j", (argv, message, detail) => {
    const args = argv.map((arg) =>
      arg.startsWith("FILE:") ? file(`f${argv.length}${arg.length}.json`, arg.slice(5)) : arg,
    );
    let error: unknown;
    try {
      loadConfig({}, args);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain(message);
    expect((error as ConfigError).message).toContain(detail);
  });
});

describe("parsers", () => {
  it("reads integer lists sorted and without repeats", () => {
    expect(intList(1, 10)("3, 1,3,,2")).toEqual({ ok: true, value: [1, 2, 3] });
    expect(intList(1, 10)("")).toEqual({ ok: true, value: [] });
    expect(intList(1, 10)("11").ok).toBe(false);
  });

  it("reads byte sizes in SI and IEC units", () => {
    const parse = bytes();
    expect(parse("512MiB")).toEqual({ ok: true, value: 512 * 1024 * 1024 });
    expect(parse("1GB")).toEqual({ ok: true, value: 1e9 });
    expect(parse("1048576")).toEqual({ ok: true, value: 1048576 });
    expect(parse("1.5KiB")).toEqual({ ok: true, value: 1536 });
    expect(parse("12 parsecs").ok).toBe(false);
    expect(parse("-1").ok).toBe(false);
  });

  it("reads bandwidths as bytes per second", () => {
    expect(bandwidth()("50Mbit")).toEqual({ ok: true, value: 6_250_000 });
    expect(bandwidth()("0")).toEqual({ ok: true, value: 0 });
    expect(bandwidth()("fast").ok).toBe(false);
  });
});
