import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { createLogger, createRequestLog } from "../../../src/observability/log.ts";

describe("createRequestLog", () => {
  it("writes the same JSON line pino would, one per request, escaping the path", () => {
    const lines: string[] = [];
    const logger = pino({ level: "info", base: { pid: process.pid } }, { write: (line: string) => lines.push(line) });
    const requestLog = createRequestLog(logger);
    requestLog("id-1", "GET", '/img/a"b\n.jpg', 200, "hit", 0.1234);
    expect(lines).toHaveLength(0); // batched
    requestLog.flush();
    logger.info(
      { reqId: "id-1", method: "GET", path: '/img/a"b\n.jpg', status: 200, cache: "hit", ms: 0.12 },
      "request",
    );
    expect(lines).toHaveLength(2);
    const [ours, theirs] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect({ ...ours, time: 0 }).toEqual({ ...theirs, time: 0 });
  });

  it("writes any path so that the line parses back to it (plain paths skip JSON.stringify)", () => {
    const lines: string[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => lines.push(line) });
    const requestLog = createRequestLog(logger);
    const paths = [
      "/img/plain-path_1.jpg",
      "/img/a b.jpg",
      '/img/q"uote',
      "/img/back\\slash",
      "/img/\u0000\u001f\u007f",
      "/img/é😀",
    ];
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (path) => {
        lines.length = 0;
        for (const each of [...paths, `/img/${path}`]) requestLog("id", "GET", each, 200, "hit", 1);
        requestLog.flush();
        const logged = lines
          .join("")
          .trim()
          .split("\n")
          .map((line) => (JSON.parse(line) as { path: string }).path);
        expect(logged).toEqual([...paths, `/img/${path}`]);
      }),
      { numRuns: 300 },
    );
  });

  it("writes nothing when info is disabled", () => {
    const lines: string[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => lines.push(line) });
    createRequestLog(logger)("id", "GET", "/healthz", 200, undefined, 1);
    expect(lines).toHaveLength(0);
  });
});

describe("request log batching", () => {
  it("hands lines over in batches of 64 and on flush, one JSON object per line", () => {
    const writes: string[] = [];
    const logger = pino({ level: "info" }, { write: (chunk: string) => writes.push(chunk) });
    const requestLog = createRequestLog(logger);
    for (let i = 0; i < 70; i++) requestLog(`id-${i}`, "GET", `/img/${i}.jpg`, 200, "hit", 1);
    expect(writes).toHaveLength(1);
    requestLog.flush();
    expect(writes).toHaveLength(2);
    const lines = writes.join("").trim().split("\n");
    expect(lines).toHaveLength(70);
    expect(lines.map((line) => (JSON.parse(line) as { reqId: string }).reqId)).toEqual(
      Array.from({ length: 70 }, (_, i) => `id-${i}`),
    );
  });
});

describe("request log close", () => {
  it("writes what is batched and stops its timer; a line logged after close is written at once", async () => {
    const writes: string[] = [];
    const logger = pino({ level: "info" }, { write: (chunk: string) => writes.push(chunk) });
    const requestLog = createRequestLog(logger);
    requestLog("id-1", "GET", "/img/a.jpg", 200, "hit", 1);
    requestLog.close();
    expect(writes).toHaveLength(1);
    requestLog("id-2", "GET", "/img/b.jpg", 200, "miss", 1);
    expect(writes).toHaveLength(2); // no timer left to batch for
    await new Promise((resolve) => setTimeout(resolve, 150)); // past a batch interval: nothing more
    expect(writes.join("").trim().split("\n")).toHaveLength(2);
  });
});

describe("createLogger", () => {
  it("writes each batch to its file descriptor before flush() returns (no thread-pool round trip)", () => {
    const dir = mkdtempSync(join(tmpdir(), "imagika-log-"));
    const fd = openSync(join(dir, "out.log"), "a");
    try {
      const logger = createLogger({ level: "info", pretty: false }, fd);
      const requestLog = createRequestLog(logger);
      for (let i = 0; i < 64; i++) requestLog(`id-${i}`, "GET", `/img/${i}.jpg`, 200, "hit", 1);
      expect(readFileSync(join(dir, "out.log"), "utf8").trim().split("\n")).toHaveLength(64); // a full batch
      requestLog("id-64", "GET", "/img/64.jpg", 200, "miss", 2);
      requestLog.flush();
      logger.warn("after");
      const lines = readFileSync(join(dir, "out.log"), "utf8").trim().split("\n");
      expect(lines).toHaveLength(66);
      expect(JSON.parse(lines[64]!)).toMatchObject({ reqId: "id-64", cache: "miss" });
      expect(JSON.parse(lines[65]!)).toMatchObject({ level: 40, msg: "after" });
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
