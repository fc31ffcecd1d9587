import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.ts";
import type { OriginConfig } from "../../src/config/config.ts";
import { FsFetcher } from "../../src/fetcher/fs-fetcher.ts";
import { bodyOf, expectCode } from "../helpers/fetch-routes.ts";
import { imageFacts, makeJpeg } from "../helpers/images.ts";
import { startProxy } from "../helpers/proxy.ts";

// The directory origin against a real temp directory: a path the client got wrong is the client's 4xx, whatever
// errno the file system answers it with; only the disk failing is the origin's 502.

let root = "";
let jpeg: Buffer;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "imagika-fs-origin-"));
  jpeg = await makeJpeg(40, 30);
  await writeFile(join(root, "photo.jpg"), jpeg);
  await mkdir(join(root, "dir.jpg"));
  await symlink("loop.jpg", join(root, "loop.jpg")); // points at itself
  await symlink("pong.jpg", join(root, "ping.jpg"));
  await symlink("ping.jpg", join(root, "pong.jpg"));
  await writeFile(join(root, "locked.jpg"), jpeg);
  await chmod(join(root, "locked.jpg"), 0o000);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function fetcher(): FsFetcher {
  const config: OriginConfig = {
    spec: { kind: "fs", root },
    s3Region: "us-east-1",
    s3Endpoint: "",
    maxSourceBytes: 10e6,
    connectTimeoutMs: 2000,
    headersTimeoutMs: 2000,
    bodyTimeoutMs: 2000,
    totalTimeoutMs: 10_000,
    connections: 4,
    concurrency: 4,
    queue: 16,
    maxRedirects: 3,
    allowPrivateOrigins: false,
    allowedSources: [],
  };
  return new FsFetcher(config);
}

describe("FsFetcher", () => {
  it("reads an original", async () => {
    expect((await bodyOf(fetcher().fetchOriginal("photo.jpg"))).equals(jpeg)).toBe(true);
  });

  it.each([
    ["a missing file (ENOENT)", "missing.jpg"],
    ["a 300-character segment (ENAMETOOLONG)", `${"x".repeat(296)}.jpg`],
    ["a symlink to itself (ELOOP)", "loop.jpg"],
    ["two symlinks to each other (ELOOP)", "ping.jpg"],
    ["a path through a file (ENOTDIR)", "photo.jpg/x.jpg"],
    ["a directory", "dir.jpg"],
  ])("answers %s with ORIGIN_NOT_FOUND", async (_name, path) => {
    await expectCode(fetcher().fetchOriginal(path), "ORIGIN_NOT_FOUND");
  });

  // root reads any file whatever its mode: there this test cannot make EACCES happen, and says so by being skipped
  it.skipIf(process.getuid?.() === 0)("answers an unreadable file (EACCES) with ORIGIN_FORBIDDEN", async () => {
    await expectCode(fetcher().fetchOriginal("locked.jpg"), "ORIGIN_FORBIDDEN");
  });
});

describe("FsFetcher behind the proxy", () => {
  let app: App;
  beforeAll(async () => {
    app = await startProxy({ origin: root });
  });
  afterAll(async () => {
    await app.close();
  });

  it.each([
    ["a 300-character segment", `/img/${"x".repeat(296)}.jpg?w=10`],
    ["a symlink loop", "/img/loop.jpg?w=10"],
  ])("answers %s with 404 ORIGIN_NOT_FOUND, and still serves", async (_name, path) => {
    const res = await fetch(`${app.url}${path}`);
    expect({ status: res.status, body: await res.json() }).toMatchObject({
      status: 404,
      body: { error: "ORIGIN_NOT_FOUND" },
    });
    const ok = await fetch(`${app.url}/img/photo.jpg?w=20`);
    expect(ok.status).toBe(200);
    expect((await imageFacts(Buffer.from(await ok.arrayBuffer()))).width).toBe(20);
  });
});

describe("a directory origin's validators: size and mtime", () => {
  it("revalidates a stale entry with one stat (no read), and sees a rewritten file as new bytes", async () => {
    let clock = 1_000_000;
    const app = await startProxy(
      { origin: root, cacheTtlSeconds: 60, staleWhileRevalidateSeconds: 0 },
      { now: () => clock },
    );
    try {
      await writeFile(join(root, "changing.jpg"), jpeg);
      const first = await fetch(`${app.url}/img/changing.jpg?w=20`);
      await first.arrayBuffer();
      clock += 61_000;
      const same = await fetch(`${app.url}/img/changing.jpg?w=20`);
      expect(same.headers.get("cache-status")).toBe("imagika; fwd=stale; fwd-status=304; ttl=60");
      expect(same.headers.get("etag")).toBe(first.headers.get("etag"));
      await same.arrayBuffer();

      await writeFile(join(root, "changing.jpg"), await makeJpeg(40, 40, 9)); // square now: 20 px high at w=20
      clock += 61_000;
      const changed = await fetch(`${app.url}/img/changing.jpg?w=20`);
      expect(changed.headers.get("cache-status")).toBe("imagika; fwd=stale; fwd-status=200; ttl=60; stored");
      expect((await imageFacts(Buffer.from(await changed.arrayBuffer()))).height).toBe(20);
      expect(app.stats).toMatchObject({ revalidationsNotModified: 1, originalsChanged: 1 });
    } finally {
      await app.close();
    }
  });
});
