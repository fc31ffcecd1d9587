import { describe, expect, it } from "vitest";
import { ProxyError } from "../../../src/errors.ts";
import { BodyCollector } from "../../../src/fetcher/body-collector.ts";

const bytes = (text: string): Buffer => Buffer.from(text, "latin1");

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof ProxyError ? error.code : "not a ProxyError";
  }
  return undefined;
}

describe("BodyCollector", () => {
  it("fills a declared-length body in place, from reads and from copies, and hands that buffer over", () => {
    const body = new BodyCollector(100, 6);
    const rest = body.unfilled();
    expect(rest?.byteLength).toBe(6);
    rest?.write("abc", "latin1"); // as a socket read would
    body.commitUnfilled(3);
    expect(body.missingBytes).toBe(3);
    const borrowed = bytes("def");
    body.push(borrowed, true);
    borrowed.fill(0); // the read buffer is reused: the body kept its own copy
    expect(body.missingBytes).toBe(0);
    expect(body.unfilled()).toBeUndefined();
    expect(body.take().toString("latin1")).toBe("abcdef");
  });

  it("goes on as a chunk list past the declared length, still counting every byte", () => {
    const body = new BodyCollector(10, 4);
    body.push(bytes("abc"), false);
    body.push(bytes("defg"), false); // straddles the declared end
    body.push(bytes("hij"), true);
    expect(body.take().toString("latin1")).toBe("abcdefghij");
    expect(codeOf(() => body.push(bytes("k"), false))).toBe("SOURCE_TOO_LARGE");
  });

  it("collects a body without a declared length, copying only borrowed chunks", () => {
    const body = new BodyCollector(10, undefined);
    expect(body.unfilled()).toBeUndefined();
    expect(body.missingBytes).toBe(0);
    const own = bytes("abc");
    body.push(own, false);
    own.write("A", "latin1"); // not borrowed, so not copied: the body is this memory
    expect(body.take().toString("latin1")).toBe("Abc");
    body.push(bytes("de"), true);
    expect(body.take().toString("latin1")).toBe("Abcde");
    expect(body.receivedBytes).toBe(5);
  });

  it("refuses a declared length over the cap before any byte, and counted bytes past it", () => {
    expect(codeOf(() => new BodyCollector(10, 11))).toBe("SOURCE_TOO_LARGE");
    const body = new BodyCollector(10, undefined);
    body.push(Buffer.alloc(10), false);
    expect(codeOf(() => body.push(Buffer.alloc(1), false))).toBe("SOURCE_TOO_LARGE");
  });

  it("hands over what arrived of a body shorter than declared, and an empty one", () => {
    const short = new BodyCollector(10, 5);
    short.push(bytes("ab"), false);
    expect(short.take().toString("latin1")).toBe("ab");
    expect(new BodyCollector(10, 0).take().byteLength).toBe(0);
  });

  it("tells the memory budget the declared length at once, and a body that grows past it or declared none", () => {
    const sizes: number[] = [];
    const declared = new BodyCollector(10_000_000, 300_000, (bytes) => sizes.push(bytes));
    expect(sizes).toEqual([300_000]);
    declared.push(Buffer.alloc(300_000), false);
    expect(sizes).toEqual([300_000]); // within what was declared: nothing new
    declared.push(Buffer.alloc(1), false); // the origin lied
    expect(sizes).toEqual([300_000, 300_001 + 256 * 1024]);

    const undeclared: number[] = [];
    const streaming = new BodyCollector(600_000, undefined, (bytes) => undeclared.push(bytes));
    for (let i = 0; i < 10; i++) streaming.push(Buffer.alloc(50_000), true);
    // reported in 256 KiB steps, never past the cap
    expect(undeclared).toEqual([50_000 + 256 * 1024, 600_000]); // 350,000 + 256 KiB is past the cap
  });
});
