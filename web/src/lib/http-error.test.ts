// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { describeHttpError, describeResponseError, parseErrorBody, parseRetryAfter } from "./http-error.ts";

describe("parseErrorBody", () => {
  it("reads the proxy's JSON error", () => {
    expect(parseErrorBody('{"error":"RATE_LIMITED","message":"slow down"}')).toEqual({
      error: "RATE_LIMITED",
      message: "slow down",
    });
  });

  it("gives empty fields for HTML or garbage", () => {
    expect(parseErrorBody("<html>Bad gateway</html>")).toEqual({ error: undefined, message: undefined });
    expect(parseErrorBody("[1]")).toEqual({ error: undefined, message: undefined });
  });
});

describe("parseRetryAfter", () => {
  it("reads delta-seconds and HTTP dates", () => {
    expect(parseRetryAfter("3")).toBe(3);
    const now = Date.parse("2025-01-01T00:00:00Z");
    expect(parseRetryAfter("Wed, 01 Jan 2025 00:00:10 GMT", now)).toBe(10);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe("describeHttpError", () => {
  it("names origin failures, rate limits and overload", () => {
    expect(describeHttpError(502, { error: undefined, message: undefined }).title).toBe("Origin down");
    expect(describeHttpError(504, { error: undefined, message: undefined }).title).toBe("Origin timed out");
    expect(describeHttpError(503, { error: "OVERLOADED", message: undefined }).title).toBe("Proxy overloaded");
    const limited = describeHttpError(429, { error: undefined, message: undefined }, 2);
    expect(limited.title).toBe("Rate limited");
    expect(limited.detail).toContain("retry in 2 s");
  });

  it("prefers the proxy's own message", () => {
    expect(describeHttpError(400, { error: "INVALID_OPTIONS", message: "w must be 1-8192" })).toMatchObject({
      code: "INVALID_OPTIONS",
      detail: "w must be 1-8192",
    });
  });
});

describe("describeResponseError", () => {
  it("reads status, body and Retry-After from a Response", async () => {
    const response = new Response('{"error":"RATE_LIMITED","message":"Too many requests"}', {
      status: 429,
      headers: { "Retry-After": "4" },
    });
    expect(await describeResponseError(response)).toEqual({
      status: 429,
      code: "RATE_LIMITED",
      title: "Rate limited",
      detail: "Too many requests",
      retryAfterSeconds: 4,
    });
  });
});
