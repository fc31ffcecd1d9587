import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OriginConfig } from "../../src/config/config.ts";
import { HttpFetcher } from "../../src/fetcher/http-fetcher.ts";
import { BIG, bodyOf, expectCode, fetchRoutes, sha256 as sha } from "../helpers/fetch-routes.ts";
import { startProxy } from "../helpers/proxy.ts";
import { bytesRoute, startTestOrigin } from "../helpers/test-origin.ts";
import type { Route, TestOrigin } from "../helpers/test-origin.ts";

// HttpFetcher's undici path (getOnce): what remote mode, HTTPS origins and redirects off the configured origin use.
// The configured plain-HTTP origin goes through OriginClient (origin-client.test.ts); here a second server on another
// port is a remote source, so every fetch below takes the undici path.

let source: TestOrigin;
let sourceUrl = "";

beforeAll(async () => {
  source = await startTestOrigin({
    ...fetchRoutes(),
    "/go": (req, res) => redirectTo(new URL(req.url ?? "/", "http://x").searchParams.get("to") ?? "/")(req, res),
  });
  sourceUrl = source.url.replace(/\/$/, "");
});

afterAll(async () => {
  await source.close();
});

function fetcher(maxSourceBytes = 10e6, overrides: Partial<OriginConfig> = {}): HttpFetcher {
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
    ...overrides,
  };
  return new HttpFetcher(config);
}

describe("HttpFetcher, undici path", () => {
  it("fetches Content-Length and chunked bodies byte for byte, and follows a redirect", async () => {
    const f = fetcher();
    try {
      expect(sha(await bodyOf(f.fetchUrl(`${sourceUrl}/big.jpg`)))).toBe(sha(BIG));
      expect(sha(await bodyOf(f.fetchUrl(`${sourceUrl}/chunked.jpg`)))).toBe(sha(BIG));
      expect(sha(await bodyOf(f.fetchUrl(`${sourceUrl}/moved.jpg`)))).toBe(sha(BIG));
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
      expect(sha(await bodyOf(f.fetchUrl(`${sourceUrl}/big.jpg`)))).toBe(sha(BIG));
    } finally {
      await f.close();
    }
  });
});

// Redirect hops: which hop is trusted depends on where the fetch began. Host names tell loopback servers apart for
// --allowed-sources ("127.0.0.1" allowed, "localhost" not); allowPrivateOrigins lets the guard pass loopback where a
// test is about the allowlist, and is off where a test is about the guard.
describe("HttpFetcher, redirect hops", () => {
  let other: TestOrigin; // a host outside --allowed-sources
  let origin: TestOrigin; // the configured origin, base path /photos/
  const opened: HttpFetcher[] = [];

  beforeAll(async () => {
    other = await startTestOrigin({ "/x.jpg": bytesRoute(Buffer.from("other host")) });
    origin = await startTestOrigin({
      "/photos/big.jpg": fetchRoutes()["/big.jpg"]!,
      "/photos/moved.jpg": redirectTo("/photos/big.jpg"),
      "/photos/out.jpg": redirectTo("/secret.jpg"),
      "/photos/escape.jpg": redirectTo("/photos/..%2fsecret.jpg"),
      "/secret.jpg": bytesRoute(Buffer.from("outside the prefix")),
    });
  });

  afterAll(async () => {
    await Promise.all(opened.splice(0).map((f) => f.close()));
    await Promise.all([other.close(), origin.close()]);
  });

  function hopFetcher(originBase: string, allowPrivateOrigins: boolean): HttpFetcher {
    const f = fetcher(10e6, { spec: { kind: "http", baseUrl: originBase }, allowPrivateOrigins });
    opened.push(f);
    return f;
  }
  const portOf = (server: TestOrigin): string => new URL(server.url).port;
  const viaSource = (to: string): string => `${sourceUrl}/go?to=${encodeURIComponent(to)}`;

  it("remote mode: an allowed source redirecting to a host outside --allowed-sources is refused before any request", async () => {
    const f = hopFetcher(`http://localhost:${portOf(origin)}/photos/`, true);
    const before = other.total();
    await expectCode(f.fetchUrl(viaSource(`http://localhost:${portOf(other)}/x.jpg`)), "FORBIDDEN");
    expect(other.total()).toBe(before);
  });

  it("remote mode: an allowed source redirecting into the configured origin is refused, under its prefix or not", async () => {
    const f = hopFetcher(`http://localhost:${portOf(origin)}/photos/`, true);
    const before = origin.total();
    await expectCode(f.fetchUrl(viaSource(`http://localhost:${portOf(origin)}/secret.jpg`)), "FORBIDDEN");
    await expectCode(f.fetchUrl(viaSource(`http://localhost:${portOf(origin)}/photos/big.jpg`)), "FORBIDDEN");
    expect(origin.total()).toBe(before);
  });

  it("remote mode: a source URL on the configured origin still passes the SSRF guard", async () => {
    // 127.0.0.1 is an allowed source here, and the configured origin: remote mode must not borrow the origin's trust
    const f = hopFetcher(`http://127.0.0.1:${portOf(origin)}/photos/`, false);
    const before = origin.total();
    await expectCode(f.fetchUrl(`http://127.0.0.1:${portOf(origin)}/photos/big.jpg`), "FORBIDDEN");
    expect(origin.total()).toBe(before);
  });

  it("configured origin: a redirect within its base path is followed, private address and all", async () => {
    const f = hopFetcher(`http://127.0.0.1:${portOf(origin)}/photos/`, false);
    expect(sha(await bodyOf(f.fetchOriginal("moved.jpg")))).toBe(sha(BIG));
  });

  it("configured origin: a redirect outside its base path passes the SSRF guard", async () => {
    const f = hopFetcher(`http://127.0.0.1:${portOf(origin)}/photos/`, false);
    await expectCode(f.fetchOriginal("out.jpg"), "FORBIDDEN");
    await expectCode(f.fetchOriginal("escape.jpg"), "FORBIDDEN"); // "/photos/..%2f" only looks like the prefix
    expect(origin.count("/secret.jpg") + origin.count("/photos/../secret.jpg")).toBe(0); // before the lenient fetch below
    // where the guard allows the address, the same hop is followed (through the guarded agent)
    const lenient = hopFetcher(`http://127.0.0.1:${portOf(origin)}/photos/`, true);
    expect((await bodyOf(lenient.fetchOriginal("out.jpg"))).toString()).toBe("outside the prefix");
  });

  it("through the proxy: /img?url= of an allowed source that redirects elsewhere is 403, and the other host is never asked", async () => {
    const app = await startProxy({
      origin: `http://localhost:${portOf(origin)}/photos/`,
      allowedSources: ["127.0.0.1"],
      allowPrivateOrigins: true,
    });
    try {
      const before = other.total();
      const res = await fetch(
        `${app.url}/img?url=${encodeURIComponent(viaSource(`http://localhost:${portOf(other)}/x.jpg`))}`,
      );
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: string }).error).toBe("FORBIDDEN");
      expect(other.total()).toBe(before);
    } finally {
      await app.close();
    }
  });
});

function redirectTo(location: string): Route {
  return (_req, res) => {
    res.writeHead(302, { location });
    res.end();
  };
}
