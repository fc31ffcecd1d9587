import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OriginConfig } from "../../src/config/config.ts";
import { ProxyError } from "../../src/errors.ts";
import { HttpFetcher } from "../../src/fetcher/http-fetcher.ts";

// HttpFetcher's undici path (getOnce): what remote mode, HTTPS origins and redirects off the configured origin use.
// The configured plain-HTTP origin goes through OriginClient (origin-client.test.ts); here a second server on another
// port is a remote source, so every fetch below takes the undici path.

const BIG = randomBytes(2 * 1024 * 1024 + 777);
const sha = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

type Route = (req: IncomingMessage, res: ServerResponse) => void;
const routes: Record<string, Route> = {
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
    res.writeHead(301, { location: "/big.jpg" });
    res.end();
  },
  "/cut.jpg": (_req, res) => {
    res.writeHead(200, { "content-length": 100_000 });
    res.write(Buffer.alloc(40_000), () => res.destroy());
  },
  "/stall.jpg": (_req, res) => {
    res.writeHead(200, { "content-length": 1000 });
    res.write(Buffer.alloc(100));
  },
};

let source: Server;
let sourceUrl = "";

beforeAll(async () => {
  source = createServer((req, res) => {
    const route = routes[req.url ?? ""];
    if (route) route(req, res);
    else {
      res.writeHead(500);
      res.end();
    }
  });
  await new Promise<void>((resolve) => source.listen(0, "127.0.0.1", resolve));
  sourceUrl = `http://127.0.0.1:${(source.address() as AddressInfo).port}`;
});

afterAll(async () => {
  source.closeAllConnections();
  await new Promise((resolve) => source.close(resolve));
});

function fetcher(maxSourceBytes = 10e6): HttpFetcher {
  const config: OriginConfig = {
    spec: { kind: "http", baseUrl: "http://127.0.0.1:1/" }, // the configured origin: never asked here
    s3Region: "us-east-1",
    s3Endpoint: "",
    maxSourceBytes,
    connectTimeoutMs: 2000,
    headersTimeoutMs: 2000,
    bodyTimeoutMs: 200,
    totalTimeoutMs: 10_000,
    connections: 4,
    concurrency: 4,
    queue: 16,
    maxRedirects: 3,
    allowPrivateOrigins: true, // the source is on loopback
    allowedSources: ["127.0.0.1"],
  };
  return new HttpFetcher(config);
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProxyError);
  expect((error as ProxyError).code).toBe(code);
}

describe("HttpFetcher, undici path", () => {
  it("fetches Content-Length and chunked bodies byte for byte, and follows a redirect", async () => {
    const f = fetcher();
    try {
      expect(sha(await f.fetchUrl(`${sourceUrl}/big.jpg`))).toBe(sha(BIG));
      expect(sha(await f.fetchUrl(`${sourceUrl}/chunked.jpg`))).toBe(sha(BIG));
      expect(sha(await f.fetchUrl(`${sourceUrl}/moved.jpg`))).toBe(sha(BIG));
    } finally {
      await f.close();
    }
  });

  it("refuses bodies over the byte cap, declared or counted", async () => {
    const f = fetcher(1_000_000);
    try {
      await expectCode(f.fetchUrl(`${sourceUrl}/big.jpg`), "SOURCE_TOO_LARGE");
      await expectCode(f.fetchUrl(`${sourceUrl}/chunked.jpg`), "SOURCE_TOO_LARGE");
    } finally {
      await f.close();
    }
  });

  it("maps 404, a cut body and a stalled body to their codes, and keeps working", async () => {
    const f = fetcher();
    try {
      await expectCode(f.fetchUrl(`${sourceUrl}/missing.jpg`), "ORIGIN_NOT_FOUND");
      await expectCode(f.fetchUrl(`${sourceUrl}/cut.jpg`), "ORIGIN_FAILED");
      await expectCode(f.fetchUrl(`${sourceUrl}/stall.jpg`), "ORIGIN_TIMEOUT");
      expect(sha(await f.fetchUrl(`${sourceUrl}/big.jpg`))).toBe(sha(BIG));
    } finally {
      await f.close();
    }
  });
});
