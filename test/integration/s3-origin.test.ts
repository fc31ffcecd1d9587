import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.ts";
import { imageFacts, makeJpeg, sha256 } from "../helpers/images.ts";
import { startProxy } from "../helpers/proxy.ts";

// s3rver: a real S3-compatible server (REST + SigV4) on loopback; its fixed credentials are S3RVER/S3RVER.
let server: S3rver;
let endpoint: string;
let jpeg: Buffer;
const apps: App[] = [];

beforeAll(async () => {
  const directory = await mkdtemp(join(tmpdir(), "imagika-s3-"));
  server = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory });
  const address = (await server.run()) as { port: number };
  endpoint = `http://127.0.0.1:${address.port}`;
  process.env.AWS_ACCESS_KEY_ID = "S3RVER";
  process.env.AWS_SECRET_ACCESS_KEY = "S3RVER";
  const client = new S3Client({
    region: "us-east-1",
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  });
  await client.send(new CreateBucketCommand({ Bucket: "photos" }));
  jpeg = await makeJpeg(800, 600, 11);
  await client.send(new PutObjectCommand({ Bucket: "photos", Key: "originals/trip/beach.jpg", Body: jpeg }));
  await client.send(
    new PutObjectCommand({
      Bucket: "photos",
      Key: "originals/big.jpg",
      Body: Buffer.concat([jpeg, Buffer.alloc(300_000)]),
    }),
  );
  client.destroy();
});

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await server.close();
});

async function proxy(overrides: Partial<Parameters<typeof startProxy>[0]> = {}): Promise<App> {
  const app = await startProxy({ origin: "s3://photos/originals", s3Endpoint: endpoint, ...overrides });
  apps.push(app);
  return app;
}

describe("S3 origin", () => {
  it("delivers the object's exact bytes through the proxy, fetched once", async () => {
    const app = await proxy();
    const first = await fetch(`${app.url}/img/trip/beach.jpg`);
    expect(first.status).toBe(200);
    expect(first.headers.get("content-type")).toBe("image/jpeg");
    expect(sha256(Buffer.from(await first.arrayBuffer()))).toBe(sha256(jpeg));
    const second = await fetch(`${app.url}/img/trip/beach.jpg`);
    expect(second.headers.get("x-cache")).toBe("HIT");
    expect(sha256(Buffer.from(await second.arrayBuffer()))).toBe(sha256(jpeg));
    expect(app.stats.originFetches).toBe(1);
    expect((await fetch(`${app.url}/readyz`)).status).toBe(200);
  });

  it("maps NoSuchKey to 404, refused credentials to 403 and oversized objects to 413", async () => {
    const app = await proxy({ maxSourceBytes: 200_000 });
    const missing = await fetch(`${app.url}/img/nope.jpg`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: "ORIGIN_NOT_FOUND" });
    const big = await fetch(`${app.url}/img/big.jpg`);
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ error: "SOURCE_TOO_LARGE" });

    process.env.AWS_ACCESS_KEY_ID = "NOT-A-KEY"; // s3rver checks the access key id (its only account is S3RVER)
    try {
      const denied = await proxy();
      const res = await fetch(`${denied.url}/img/trip/beach.jpg`);
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ error: "ORIGIN_FORBIDDEN" });
    } finally {
      process.env.AWS_ACCESS_KEY_ID = "S3RVER";
    }
  });
});

describe("an S3 origin's validators: the object's ETag", () => {
  it("revalidates with If-None-Match (304), and replaces an object uploaded again with other bytes", async () => {
    let clock = 1_000_000;
    const app = await startProxy(
      { origin: "s3://photos/originals", s3Endpoint: endpoint, cacheTtlSeconds: 60, staleWhileRevalidateSeconds: 0 },
      { now: () => clock },
    );
    apps.push(app);
    await upload("originals/versions.jpg", jpeg);
    const first = await fetch(`${app.url}/img/versions.jpg?w=80`);
    expect((await imageFacts(Buffer.from(await first.arrayBuffer()))).height).toBe(60);
    clock += 61_000;
    const same = await fetch(`${app.url}/img/versions.jpg?w=80`);
    expect(same.headers.get("cache-status")).toBe("imagika; fwd=stale; fwd-status=304; ttl=60");
    expect(same.headers.get("etag")).toBe(first.headers.get("etag"));
    await same.arrayBuffer();

    await upload("originals/versions.jpg", await makeJpeg(400, 400, 12));
    clock += 61_000;
    const changed = await fetch(`${app.url}/img/versions.jpg?w=80`);
    expect(changed.headers.get("cache-status")).toBe("imagika; fwd=stale; fwd-status=200; ttl=60; stored");
    expect((await imageFacts(Buffer.from(await changed.arrayBuffer()))).height).toBe(80);
  });
});

async function upload(key: string, body: Buffer): Promise<void> {
  const client = new S3Client({
    region: "us-east-1",
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  });
  try {
    await client.send(new PutObjectCommand({ Bucket: "photos", Key: key, Body: body }));
  } finally {
    client.destroy();
  }
}
