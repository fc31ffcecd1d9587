import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imageUrl, signImageUrl, signSrcSet, srcSet, type ImageOptions } from "imagika/url";
import type { App } from "../../src/app.ts";
import { imageFacts, makeJpeg } from "../helpers/images.ts";
import { startProxy, type ProxyOverrides } from "../helpers/proxy.ts";
import { bytesRoute, startTestOrigin, type TestOrigin } from "../helpers/test-origin.ts";

/** imagika/url against the real proxy: what the builder writes, the proxy reads; what it signs, the proxy accepts. */
const KEY = "integration-signing-key";
const ODD_PATH = "albums/a b/ä+1 (2)#3.jpg";

let origin: TestOrigin;
const apps: App[] = [];

beforeAll(async () => {
  const jpeg = await makeJpeg(800, 600);
  origin = await startTestOrigin({
    "/photo.jpg": bytesRoute(jpeg, "image/jpeg"),
    [`/${ODD_PATH}`]: bytesRoute(jpeg, "image/jpeg"),
  });
});

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await origin.close();
});

async function proxyFor(overrides: Omit<ProxyOverrides, "origin"> = {}): Promise<App> {
  const app = await startProxy({ origin: origin.url, ...overrides });
  apps.push(app);
  return app;
}

async function get(app: App, url: string): Promise<{ status: number; body: Buffer; type: string | null }> {
  const res = await fetch(`${app.url}${url}`);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), type: res.headers.get("content-type") };
}

async function facts(app: App, url: string) {
  const { status, body } = await get(app, url);
  expect(status, url).toBe(200);
  return imageFacts(body);
}

/** Every option at once (but p, which needs --presets, and fp, which replaces gravity): the proxy takes them all. */
const EVERYTHING: ImageOptions = {
  w: 200,
  h: 100,
  dpr: 1.5,
  fit: "cover",
  q: 70,
  f: "webp",
  enlarge: false,
  gravity: "attention",
  crop: { left: 10, top: 20, width: 700, height: 500 },
  rot: 180,
  flip: "h",
  bg: "#123",
  blur: 0.5,
  sharpen: 1,
  dl: true,
};

describe("imagika/url through the proxy, unsigned", () => {
  it("builds URLs the proxy reads: every option, an odd path, a focal point and a preset", async () => {
    const app = await proxyFor({ presets: { thumb: "w=64&h=64&fit=cover" } });
    expect(await facts(app, imageUrl("photo.jpg", EVERYTHING))).toEqual({ format: "webp", width: 300, height: 150 });
    expect(await facts(app, imageUrl(ODD_PATH, { w: 100, f: "png" }))).toEqual({
      format: "png",
      width: 100,
      height: 75,
    });
    const focused = imageUrl("photo.jpg", { w: 50, h: 50, fp: { x: 0.9, y: 0.1 }, f: "jpeg" });
    expect(await facts(app, focused)).toEqual({ format: "jpeg", width: 50, height: 50 });
    expect(await facts(app, imageUrl("photo.jpg", { p: "thumb", f: "png" }))).toEqual({
      format: "png",
      width: 64,
      height: 64,
    });
    const placeholder = await get(app, imageUrl("photo.jpg", { w: 100, f: "thumbhash" }));
    expect(placeholder.type).toMatch(/^text\/plain/);
    expect(placeholder.body.toString()).toMatch(/^[A-Za-z0-9+/]+=*$/);
  });

  it("builds srcsets whose every candidate is as wide as its descriptor says", async () => {
    const app = await proxyFor();
    const set = srcSet(ODD_PATH, [160, 320, 480], { w: 400, h: 300, fit: "cover", f: "webp" });
    const candidates = set.split(", ").map((candidate) => candidate.split(" ") as [string, string]);
    expect(candidates).toHaveLength(3);
    for (const [url, descriptor] of candidates) {
      const width = Number.parseInt(descriptor, 10);
      expect(await facts(app, url)).toEqual({ format: "webp", width, height: (width * 3) / 4 });
    }
  });
});

describe("imagika/url through the proxy, signed (--signing-key)", () => {
  it("signs URLs the proxy accepts, and the proxy refuses them unsigned, altered or expired", async () => {
    const app = await proxyFor({ signingKeys: [KEY, "older-key"] });
    const url = imageUrl(ODD_PATH, { ...EVERYTHING, dl: false });
    expect((await get(app, url)).status).toBe(403);
    const signed = await signImageUrl(url, KEY);
    expect(await facts(app, signed)).toEqual({ format: "webp", width: 300, height: 150 });
    expect((await get(app, signed.replace("w=200", "w=201"))).status).toBe(403);
    expect((await get(app, await signImageUrl(url, "not-the-key"))).status).toBe(403);

    const nowSeconds = Math.floor(Date.now() / 1000);
    const fresh = await signImageUrl(url, KEY, { expiresAt: new Date((nowSeconds + 3600) * 1000) });
    expect((await get(app, fresh)).status).toBe(200);
    expect((await get(app, await signImageUrl(url, KEY, { expiresAt: nowSeconds - 10 }))).status).toBe(403);
  });

  it("signs absolute URLs, every srcset candidate, and remote-mode sources", async () => {
    const app = await proxyFor({ signingKeys: [KEY], allowedSources: ["127.0.0.1"], allowPrivateOrigins: true });
    const absolute = await signImageUrl(imageUrl("photo.jpg", { w: 120, f: "jpeg" }, { base: app.url }), KEY);
    const res = await fetch(absolute);
    expect(res.status).toBe(200);
    expect(await imageFacts(Buffer.from(await res.arrayBuffer()))).toEqual({ format: "jpeg", width: 120, height: 90 });

    const set = await signSrcSet(srcSet("photo.jpg", [80, 160], { f: "png" }), KEY);
    for (const [url, descriptor] of set.split(", ").map((candidate) => candidate.split(" ") as [string, string])) {
      expect((await facts(app, url)).width).toBe(Number.parseInt(descriptor, 10));
    }

    const remote = imageUrl(`${origin.url}${ODD_PATH.split("/").map(encodeURIComponent).join("/")}`, { w: 64 });
    expect((await get(app, remote)).status).toBe(403);
    expect((await facts(app, await signImageUrl(remote, KEY))).width).toBe(64);
  });
});
