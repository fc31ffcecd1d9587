import { describe, expect, it } from "vitest";
import { createRedisConnection, withTimeout } from "../../../src/cache/redis-connection.ts";
import { freePort } from "../../helpers/redis.ts";

const quiet = { warn: () => undefined, info: () => undefined };

describe("withTimeout", () => {
  it("gives the promise's value, false after the timeout, and false at once when the signal aborts", async () => {
    expect(await withTimeout(Promise.resolve(true), 1000)).toBe(true);
    expect(await withTimeout(new Promise<boolean>(() => undefined), 10)).toBe(false);
    const aborting = new AbortController();
    const waiting = withTimeout(new Promise<boolean>(() => undefined), 60_000, aborting.signal);
    aborting.abort();
    expect(await waiting).toBe(false);
    expect(await withTimeout(new Promise<boolean>(() => undefined), 60_000, AbortSignal.abort())).toBe(false);
  });
});

describe("a Redis Cluster connection that never connects", () => {
  it("closes at once while it is still trying its seeds", async () => {
    const connection = createRedisConnection(
      { kind: "cluster", seeds: [`redis://127.0.0.1:${await freePort()}`] },
      quiet,
    );
    expect(await connection.whenReady(300)).toBe(false);
    await connection.close(); // resolves (the test's timeout would catch a close that waits on the retries)
    expect(connection.isReady).toBe(false);
  });
});
