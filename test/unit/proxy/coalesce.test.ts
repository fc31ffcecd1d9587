import { describe, expect, it } from "vitest";
import { Coalescer } from "../../../src/proxy/coalesce.ts";
import type { Flight } from "../../../src/proxy/coalesce.ts";

/** A promise the test settles by hand. */
function deferred<T>(): { promise: Promise<T>; resolve(value: T): void; reject(error: unknown): void } {
  let resolve!: (value: T) => void; // assigned synchronously by the Promise constructor below
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

describe("Coalescer", () => {
  it("runs produce once for concurrent callers of one key, and again once it settled", async () => {
    const coalescer = new Coalescer<string>();
    const work = deferred<string>();
    let runs = 0;
    const produce = (): Promise<string> => {
      runs++;
      return work.promise;
    };
    const calls = Array.from({ length: 10 }, () => coalescer.run("k", produce));
    expect(calls.map((call) => call.joined)).toEqual([false, ...Array<boolean>(9).fill(true)]);
    expect(coalescer.run("other", () => Promise.resolve("x")).joined).toBe(false);
    work.resolve("v");
    expect(await Promise.all(calls.map((call) => call.promise))).toEqual(Array<string>(10).fill("v"));
    expect(runs).toBe(1);
    expect(coalescer.size).toBe(0);
    expect(coalescer.run("k", () => Promise.resolve("again")).joined).toBe(false);
  });

  it("gives a rejection to every waiter and remembers nothing", async () => {
    const coalescer = new Coalescer<string>();
    const work = deferred<string>();
    const first = coalescer.run("k", () => work.promise);
    const second = coalescer.run("k", () => Promise.resolve("unused"));
    work.reject(new Error("origin down"));
    await expect(first.promise).rejects.toThrow("origin down");
    await expect(second.promise).rejects.toThrow("origin down");
    expect(await coalescer.run("k", () => Promise.resolve("fresh")).promise).toBe("fresh");
  });

  it("abandons matching runs: their waiters still get the result, new callers start a run of their own", async () => {
    const coalescer = new Coalescer<string>();
    const old = deferred<string>();
    let oldFlight: Flight | undefined;
    const first = coalescer.run("v:a.jpg", (flight) => {
      oldFlight = flight;
      return old.promise;
    });
    const joined = coalescer.run("v:a.jpg", () => Promise.resolve("unused"));
    const untouched = coalescer.run("v:b.jpg", () => new Promise<string>(() => undefined));
    expect(coalescer.abandon((key) => key.startsWith("v:a"))).toBe(1);
    expect(oldFlight?.isAbandoned).toBe(true);

    const fresh = deferred<string>();
    const after = coalescer.run("v:a.jpg", () => fresh.promise);
    expect(after.joined).toBe(false);
    old.resolve("old"); // the abandoned run ends first: it must not drop the new run from the map
    expect(await first.promise).toBe("old");
    expect(await joined.promise).toBe("old");
    expect(coalescer.run("v:a.jpg", () => Promise.resolve("unused")).joined).toBe(true);
    fresh.resolve("new");
    expect(await after.promise).toBe("new");
    expect(coalescer.run("v:b.jpg", () => Promise.resolve("unused")).promise).toBe(untouched.promise);
  });
});
