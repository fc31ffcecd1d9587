import { createHash, randomBytes } from "node:crypto";
import { expect } from "vitest";
import { ProxyError } from "../../src/errors.ts";
import type { OriginReply } from "../../src/fetcher/fetcher.ts";
import type { Route } from "./test-origin.ts";

/** A random body of 3 MB and an odd tail: as large as an original, and no multiple of any read size. */
export const BIG = randomBytes(3 * 1024 * 1024 + 12_345);

export const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

/** The body of a fetch that must have answered 200. */
export async function bodyOf(reply: Promise<OriginReply>): Promise<Buffer> {
  const answered = await reply;
  if (answered.status !== 200) throw new Error(`expected a 200 from the fetcher, got ${answered.status}`);
  return answered.body;
}

/** What a fetcher test asks an origin for: good bodies in both framings, errors, and faults mid-body. */
export function fetchRoutes(): Record<string, Route> {
  return {
    "/big.jpg": (_req, res) => {
      res.writeHead(200, { "content-length": BIG.byteLength });
      res.end(BIG);
    },
    "/chunked.jpg": (_req, res) => {
      res.writeHead(200, { "transfer-encoding": "chunked" });
      for (let at = 0; at < BIG.byteLength; at += 100_000) res.write(BIG.subarray(at, at + 100_000));
      res.end();
    },
    "/missing.jpg": (_req, res) => {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("no such file");
    },
    "/moved.jpg": (_req, res) => {
      res.writeHead(302, { location: "/big.jpg" });
      res.end();
    },
    "/cut-body.jpg": (_req, res) => {
      res.writeHead(200, { "content-length": 100_000 });
      res.write(Buffer.alloc(40_000), () => res.destroy());
    },
    "/stall-body.jpg": (_req, res) => {
      res.writeHead(200, { "content-length": 1000 });
      res.write(Buffer.alloc(100));
    },
  };
}

/** Awaits `promise` and expects it to fail with a ProxyError of `code`. */
export async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProxyError);
  expect((error as ProxyError).code).toBe(code);
}
