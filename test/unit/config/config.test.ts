import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config/config.ts";
import { bandwidth, bytes } from "../../../src/config/parsers.ts";
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

describe("parsers", () => {
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
