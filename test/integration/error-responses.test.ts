import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.ts";
import { ProxyError } from "../../src/errors.ts";
import type { ErrorCode } from "../../src/errors.ts";
import { makeJpeg } from "../helpers/images.ts";
import { startProxy } from "../helpers/proxy.ts";
import { freePort } from "../helpers/redis.ts";
import { WireClient, destroyWireClients, get } from "../helpers/wire-client.ts";

/**
 * Every error the proxy sends, from each place that can send one (routes, handlers, the rate limit, readiness and the
 * HTTP engine's refusals), has the one shape: the catalogue's status for its code, `{ error, message }` JSON, nosniff,
 * never cacheable.
 */
let dir: string;
let image: Buffer;
const apps: App[] = [];

async function proxyFor(overrides: Omit<Parameters<typeof startProxy>[0], "origin"> & { origin?: string } = {}) {
  const app = await startProxy({ origin: dir, ...overrides });
  apps.push(app);
  return app;
}

interface SeenError {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Record<string, unknown>;
}

async function viaFetch(url: string, init: RequestInit = {}): Promise<SeenError> {
  const res = await fetch(url, init);
  return {
    status: res.status,
    headers: Object.fromEntries(res.headers),
    body: (await res.json()) as Record<string, unknown>,
  };
}

async function viaWire(port: number, request: string): Promise<SeenError> {
  const client = await WireClient.open(port);
  client.write(request);
  const res = await client.read();
  return { status: res.status, headers: res.headers, body: JSON.parse(res.body.toString()) as Record<string, unknown> };
}

/** The shape every error shares, and the catalogue's status for its code. */
function expectCatalogued(seen: SeenError, code: ErrorCode): void {
  expect(seen.body.error).toBe(code);
  expect(Object.keys(seen.body).sort()).toEqual(["error", "message"]);
  expect(typeof seen.body.message === "string" && seen.body.message.length > 0).toBe(true);
  expect(seen.status).toBe(new ProxyError(code, "").status);
  expect(seen.headers["content-type"]).toBe("application/json; charset=utf-8");
  expect(seen.headers["x-content-type-options"]).toBe("nosniff");
  expect(seen.headers["cache-control"]).toBeUndefined();
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "imagika-errors-"));
  image = await makeJpeg(64, 48, 1);
  await writeFile(join(dir, "a.jpg"), image);
});

afterEach(() => destroyWireClients());

afterAll(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

describe("error responses", () => {
  it("answers route and handler errors with their catalogued status and headers", async () => {
    const app = await proxyFor({ adminToken: "s3cret" });
    expectCatalogued(await viaFetch(`${app.url}/img/a.jpg?w=wide`), "INVALID_OPTIONS");
    expectCatalogued(await viaFetch(`${app.url}/no-such-endpoint.json`), "NOT_FOUND");
    expectCatalogued(await viaFetch(`${app.url}/img/missing.jpg`), "ORIGIN_NOT_FOUND");
    const notAllowed = await viaFetch(`${app.url}/img/a.jpg`, { method: "PUT" });
    expectCatalogued(notAllowed, "METHOD_NOT_ALLOWED");
    expect(notAllowed.headers["allow"]).toBe("GET, HEAD");

    const unauthorized = await viaFetch(`${app.url}/api/cache`, { method: "DELETE" });
    expectCatalogued(unauthorized, "UNAUTHORIZED");
    expect(unauthorized.headers["www-authenticate"]).toBe('Bearer realm="imagika-admin"');

    const unsatisfiable = await viaFetch(`${app.url}/img/a.jpg`, { headers: { range: "bytes=99999999-" } });
    expectCatalogued(unsatisfiable, "RANGE_NOT_SATISFIABLE");
    expect(unsatisfiable.headers["content-range"]).toBe(`bytes */${image.length}`);
    expect(unsatisfiable.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/); // the request's headers stay
  });

  it("answers 429 from the rate limit with Retry-After", async () => {
    const app = await proxyFor({ rateLimit: 1, rateBurst: 1 });
    expect((await fetch(`${app.url}/img/a.jpg`)).status).toBe(200);
    const limited = await viaFetch(`${app.url}/img/a.jpg`);
    expectCatalogued(limited, "RATE_LIMITED");
    expect(Number(limited.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(limited.headers["ratelimit"]).toMatch(/^"default";r=0;t=\d+$/);
  });

  it("answers readiness failures with catalogued 503s", async () => {
    const orphan = await proxyFor({ origin: `http://127.0.0.1:${await freePort()}/`, originConnectTimeoutMs: 200 });
    expectCatalogued(await viaFetch(`${orphan.url}/readyz`), "ORIGIN_UNREACHABLE");
  });

  it("answers the HTTP engine's refusals (400, 408, 414, 431) with catalogued errors before closing", async () => {
    const app = await proxyFor({ headersTimeoutMs: 300, requestTimeoutMs: 300 });
    expectCatalogued(await viaWire(app.port, "GET /healthz HTTP/1.1\r\n\r\n"), "BAD_REQUEST");
    expectCatalogued(await viaWire(app.port, get(`/img/${"a".repeat(9000)}.jpg`)), "URI_TOO_LONG");
    expectCatalogued(await viaWire(app.port, get("/healthz", `X-Pad: ${"p".repeat(17_000)}\r\n`)), "HEADERS_TOO_LARGE");
    expectCatalogued(await viaWire(app.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n"), "REQUEST_TIMEOUT");
  });
});
