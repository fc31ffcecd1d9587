import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { ProxyError } from "../../../src/errors.ts";
import { WorkLimiter } from "../../../src/transform/limiter.ts";

/** A job the test finishes by hand. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe("WorkLimiter", () => {
  it("never runs more jobs than its concurrency, and runs them all", async () => {
    const limiter = new WorkLimiter({ name: "transforms", concurrency: 2, queue: 10 });
    let running = 0;
    let peak = 0;
    const jobs = Array.from({ length: 8 }, (_, i) =>
      limiter.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await sleep(5);
        running--;
        return i;
      }),
    );
    const results = await Promise.all(jobs);
    expect(results.map((r) => r.value)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(peak).toBe(2);
    expect(limiter.stats()).toEqual({ inFlight: 0, queued: 0, rejected: 0 });
  });

  it("starts queued jobs in FIFO order", async () => {
    const limiter = new WorkLimiter({ name: "transforms", concurrency: 1, queue: 10 });
    const order: number[] = [];
    const first = gate();
    const jobs = [limiter.run(() => first.promise.then(() => order.push(0)))];
    for (let i = 1; i < 5; i++) jobs.push(limiter.run(() => Promise.resolve(order.push(i))));
    expect(limiter.stats()).toMatchObject({ inFlight: 1, queued: 4 });
    first.open();
    await Promise.all(jobs);
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it("refuses at once with OVERLOADED and a Retry-After when the queue is full", async () => {
    const limiter = new WorkLimiter({ name: "transforms", concurrency: 1, queue: 2 });
    const blocker = gate();
    const accepted = [0, 1, 2].map(() => limiter.run(() => blocker.promise));
    const refused = limiter.run(() => Promise.resolve("never"));
    await expect(refused).rejects.toBeInstanceOf(ProxyError);
    const error: unknown = await refused.catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "OVERLOADED", status: 503 });
    expect((error as ProxyError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(limiter.stats()).toEqual({ inFlight: 1, queued: 2, rejected: 1 });
    blocker.open();
    await Promise.all(accepted);
    expect(limiter.stats()).toEqual({ inFlight: 0, queued: 0, rejected: 1 });
  });

  it("names the work it refuses, so a full origin-fetch queue does not blame transforms", async () => {
    const limiter = new WorkLimiter({ name: "origin fetches", concurrency: 1, queue: 0 });
    const blocker = gate();
    const running = limiter.run(() => blocker.promise);
    const refused: unknown = await limiter.run(() => Promise.resolve()).catch((error: unknown) => error);
    expect((refused as ProxyError).message).toMatch(/^Too many origin fetches waiting; retry in \d+ s$/);
    blocker.open();
    await running;
  });

  it("with queue 0 refuses as soon as every slot is busy", async () => {
    const limiter = new WorkLimiter({ name: "transforms", concurrency: 1, queue: 0 });
    const blocker = gate();
    const running = limiter.run(() => blocker.promise);
    await expect(limiter.run(() => Promise.resolve())).rejects.toMatchObject({ code: "OVERLOADED" });
    blocker.open();
    await running;
    await expect(limiter.run(() => Promise.resolve(1))).resolves.toMatchObject({ value: 1 });
  });

  it("reports how long a job waited in the queue", async () => {
    const limiter = new WorkLimiter({ name: "transforms", concurrency: 1, queue: 1 });
    const first = limiter.run(() => sleep(40));
    const second = limiter.run(() => Promise.resolve());
    const [a, b] = await Promise.all([first, second]);
    expect(a.queueMs).toBeLessThan(b.queueMs);
    expect(b.queueMs).toBeGreaterThanOrEqual(30); // waited for a 40 ms job; only a lower bound is safe
  });

  it("frees the slot when a job fails, and passes the error on", async () => {
    const limiter = new WorkLimiter({ name: "transforms", concurrency: 1, queue: 1 });
    await expect(limiter.run(() => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    await expect(limiter.run(() => Promise.resolve("ok"))).resolves.toMatchObject({ value: "ok" });
    expect(limiter.stats().inFlight).toBe(0);
  });

  it("counts a job's weight against the slots, capped at the concurrency", async () => {
    const limiter = new WorkLimiter({ name: "transforms", concurrency: 2, queue: 5 });
    const heavy = gate();
    const heavyJob = limiter.run(() => heavy.promise, 2);
    let lightRan = false;
    const light = limiter.run(() => Promise.resolve((lightRan = true)));
    await sleep(5);
    expect(lightRan).toBe(false);
    heavy.open();
    await Promise.all([heavyJob, light]);
    expect(lightRan).toBe(true);
    // A weight above the concurrency still runs instead of waiting forever.
    await expect(limiter.run(() => Promise.resolve(1), 99)).resolves.toMatchObject({ value: 1 });
  });
});
