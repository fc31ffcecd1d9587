import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OriginConfig } from "../../src/config/config.ts";
import { HttpFetcher } from "../../src/fetcher/http-fetcher.ts";
import { BIG, expectCode, fetchRoutes, sha256 as sha } from "../helpers/fetch-routes.ts";
import { startTestOrigin } from "../helpers/test-origin.ts";
import type { TestOrigin } from "../helpers/test-origin.ts";

// HttpFetcher's undici path (getOnce): what remote mode, HTTPS origins and redirects off the configured origin use.
// The configured plain-HTTP origin goes through OriginClient (origin-client.test.ts); here a second server on another
// port is a remote source, so every fetch below takes the undici path.

let source: TestOrigin;
let sourceUrl = "";

beforeAll(async () => {
  source = await startTestOrigin(fetchRoutes());
  sourceUrl = source.url.replace(/\/$/, "");
});

afterAll(async () => {
  await source.close();
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
      await expectCode(f.fetchUrl(`${sourceUrl}/cut-body.jpg`), "ORIGIN_FAILED");
      await expectCode(f.fetchUrl(`${sourceUrl}/stall-body.jpg`), "ORIGIN_TIMEOUT");
      expect(sha(await f.fetchUrl(`${sourceUrl}/big.jpg`))).toBe(sha(BIG));
    } finally {
      await f.close();
    }
  });
});
