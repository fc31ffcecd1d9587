import sharp from "sharp";
import type { Sharp } from "sharp";
import { rgbaToThumbHash, thumbHashToApproximateAspectRatio } from "thumbhash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.ts";
import { ConfigError } from "../../src/config/settings.ts";
import { signImageUrl } from "../../src/http/signature.ts";
import { startProxy } from "../helpers/proxy.ts";
import type { ProxyOverrides } from "../helpers/proxy.ts";
import { bytesRoute, startTestOrigin } from "../helpers/test-origin.ts";
import type { TestOrigin } from "../helpers/test-origin.ts";

/**
 * The options of issue 19 through the real proxy (loopback origin, real sharp): each checked against what sharp itself
 * makes of the same original, pixel by pixel.
 */
const WIDTH = 1600;
const HEIGHT = 1000;
/** Mean absolute difference per channel (0-255) below which two renders are the same picture. */
const SAME = 1.5;

let origin: TestOrigin;
let scene: Buffer;
let sceneJpeg: Buffer;
let alpha: Buffer;
let sideways: Buffer;
const apps: App[] = [];

/**
 * A 1600x1000 picture with something to find: a gradient (x → red, y → green), a saturated skin-tone disc near the
 * top right (what attention picks) and a little noise, so every crop, turn and mirror gives different pixels.
 */
async function makeScene(): Promise<Buffer> {
  const pixels = Buffer.alloc(WIDTH * HEIGHT * 3);
  let state = 7;
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) {
      state = (state * 1_103_515_245 + 12_345) & 0x7fffffff;
      const grain = (state >>> 24) % 16;
      const isDisc = (x - 1200) ** 2 + (y - 300) ** 2 < 130 ** 2;
      const i = (y * WIDTH + x) * 3;
      if (isDisc) pixels.set([230, 170 + grain, 140], i);
      else pixels.set([(x * 200) / WIDTH + grain, (y * 200) / HEIGHT + grain, 60 + ((x + y) % 50)], i);
    }
  }
  return sharp(pixels, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } })
    .png({ compressionLevel: 1 })
    .toBuffer();
}

async function proxyFor(overrides: Omit<ProxyOverrides, "origin"> = {}): Promise<App> {
  const app = await startProxy({ origin: origin.url, ...overrides });
  apps.push(app);
  return app;
}

async function get(
  app: App,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ res: Response; body: Buffer }> {
  const res = await fetch(`${app.url}${path}`, { headers });
  return { res, body: Buffer.from(await res.arrayBuffer()) };
}

interface Pixels {
  readonly data: Buffer;
  readonly width: number;
  readonly height: number;
}

/** Decoded RGBA pixels of an encoded image or of a sharp pipeline. */
async function pixelsOf(image: Buffer | Sharp): Promise<Pixels> {
  const pipeline = Buffer.isBuffer(image) ? sharp(image) : image;
  const { data, info } = await pipeline.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

function meanDifference(a: Pixels, b: Pixels): number {
  if (a.width !== b.width || a.height !== b.height) return Infinity;
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += Math.abs((a.data[i] ?? 0) - (b.data[i] ?? 0));
  return sum / a.data.length;
}

/** sharp's output for a chain, re-read as a new image (what a second pass would see). */
async function pass(image: Sharp): Promise<Sharp> {
  return sharp(await image.png().toBuffer());
}

/** The cover scale and focal window worked out by hand: what fp means, independent of the implementation. */
function focalWindow(
  sourceWidth: number,
  sourceHeight: number,
  boxWidth: number,
  boxHeight: number,
  x: number,
  y: number,
): { coverWidth: number; coverHeight: number; left: number; top: number } {
  const scale = Math.min(1, Math.max(boxWidth / sourceWidth, boxHeight / sourceHeight));
  const coverWidth = Math.round(sourceWidth * scale);
  const coverHeight = Math.round(sourceHeight * scale);
  const clamp = (value: number, room: number) => Math.max(0, Math.min(room, value));
  return {
    coverWidth,
    coverHeight,
    left: clamp(Math.round(x * coverWidth - boxWidth / 2), coverWidth - boxWidth),
    top: clamp(Math.round(y * coverHeight - boxHeight / 2), coverHeight - boxHeight),
  };
}

beforeAll(async () => {
  scene = await makeScene();
  sceneJpeg = await sharp(scene).jpeg({ quality: 90 }).toBuffer();
  alpha = await sharp({
    create: { width: 300, height: 200, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0.25 } },
  })
    .composite([{ input: await sharp(scene).resize(150, 100).png().toBuffer(), left: 0, top: 0 }])
    .png()
    .toBuffer();
  // Stored 400x250, displayed 250x400 (EXIF 6: turn clockwise).
  sideways = await sharp(scene).resize(400, 250).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
  origin = await startTestOrigin({
    "/scene.png": bytesRoute(scene, "image/png"),
    "/scene.jpg": bytesRoute(sceneJpeg, "image/jpeg"),
    "/alpha.png": bytesRoute(alpha, "image/png"),
    "/sideways.jpg": bytesRoute(sideways, "image/jpeg"),
    "/herd.png": bytesRoute(scene, "image/png", 100),
    '/say "hi".jpg': bytesRoute(sceneJpeg, "image/jpeg"),
    "/fotos/Größe ñ.jpg": bytesRoute(sceneJpeg, "image/jpeg"),
    "/a\r\nSet-Cookie: x=1.jpg": bytesRoute(sceneJpeg, "image/jpeg"),
    "/x/../../etc/passwd": bytesRoute(sceneJpeg, "image/jpeg"),
  });
  for (let i = 0; i < 40; i++) origin.set(`/k${i}.png`, bytesRoute(scene, "image/png"));
});

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await origin.close();
});

describe("pixels: each option against sharp's own output", () => {
  let app: App;
  beforeAll(async () => {
    app = await proxyFor();
  });

  async function expectSame(query: string, reference: Sharp | Promise<Sharp>, source = "scene.png"): Promise<void> {
    const { res, body } = await get(app, `/img/${source}?${query}&f=png`);
    expect(res.status, query).toBe(200);
    const difference = meanDifference(await pixelsOf(body), await pixelsOf(await reference));
    expect(difference, query).toBeLessThan(SAME);
  }

  const original = () => sharp(scene);
  const NAMED = [
    ["center", "centre"],
    ["top", "top"],
    ["bottom", "bottom"],
    ["left", "left"],
    ["right", "right"],
    ["top-left", "left top"],
    ["top-right", "right top"],
    ["bottom-left", "left bottom"],
    ["bottom-right", "right bottom"],
  ] as const;

  it.each(NAMED)("gravity=%s crops cover like sharp's position %j", async (gravity, position) => {
    await expectSame(`w=300&h=500&gravity=${gravity}`, original().resize(300, 500, { position }));
    await expectSame(`w=500&h=200&gravity=${gravity}`, original().resize(500, 200, { position }));
  });

  it("gives a different picture for each side (the comparison can tell crops apart)", async () => {
    const top = await pixelsOf(original().resize(500, 200, { position: "top" }));
    const bottom = await pixelsOf(original().resize(500, 200, { position: "bottom" }));
    expect(meanDifference(top, bottom)).toBeGreaterThan(10 * SAME);
  });

  it.each(["attention", "entropy"] as const)("gravity=%s is libvips' smart crop", async (strategy) => {
    await expectSame(
      `w=400&h=400&gravity=${strategy}`,
      original().resize(400, 400, { position: sharp.strategy[strategy] }),
    );
    // attention finds the disc near the top right: its window is not the centre.
    if (strategy === "attention") {
      const { body } = await get(app, "/img/scene.png?w=400&h=400&gravity=attention&f=png");
      const centre = await pixelsOf(original().resize(400, 400));
      expect(meanDifference(await pixelsOf(body), centre)).toBeGreaterThan(5 * SAME);
    }
  });

  it.each([
    [0.8, 0.3, 300, 300],
    [0, 0, 300, 300],
    [1, 1, 500, 200],
    [0.5, 0.5, 500, 200],
    [0.25, 0.9, 200, 500],
  ])("fp=%d,%d in a %dx%d cover: resize to cover, window centred on the point, clamped", async (x, y, w, h) => {
    const win = focalWindow(WIDTH, HEIGHT, w, h, x, y);
    await expectSame(
      `w=${w}&h=${h}&fp=${x},${y}`,
      pass(original().resize(win.coverWidth, win.coverHeight, { fit: "fill" })).then((next) =>
        next.extract({ left: win.left, top: win.top, width: w, height: h }),
      ),
    );
  });

  it("crop cuts source pixels before the resize", async () => {
    const region = { left: 1000, top: 100, width: 500, height: 400 };
    await expectSame("crop=1000,100,500,400", original().extract(region));
    await expectSame(
      "crop=1000,100,500,400&w=250",
      pass(original().extract(region)).then((n) => n.resize(250)),
    );
    await expectSame(
      "crop=1000,100,500,400&w=200&h=200&gravity=left",
      pass(original().extract(region)).then((n) => n.resize(200, 200, { position: "left" })),
    );
  });

  it.each([90, 180, 270] as const)("rot=%i turns clockwise after auto-orientation", async (angle) => {
    await expectSame(
      `rot=${angle}&w=400`,
      pass(original().rotate(angle)).then((n) => n.resize(400)),
    );
    await expectSame(
      `rot=${angle}&w=300&h=200&gravity=top-left`,
      pass(original().rotate(angle)).then((n) => n.resize(300, 200, { position: "left top" })),
    );
  });

  it.each([
    ["h", (image: Sharp) => image.flop()],
    ["v", (image: Sharp) => image.flip()],
    ["hv", (image: Sharp) => image.flip().flop()],
  ] as const)("flip=%s mirrors (flop for h, flip for v)", async (flip, mirror) => {
    await expectSame(
      `flip=${flip}&w=400`,
      pass(mirror(original())).then((n) => n.resize(400)),
    );
  });

  it("rot then flip: the mirror applies to the turned picture, with crop and fp in original pixels", async () => {
    await expectSame(
      "rot=90&flip=h&w=300&h=200",
      pass(original().rotate(90))
        .then((n) => pass(n.flop()))
        .then((n) => n.resize(300, 200)),
    );
    const region = { left: 800, top: 0, width: 800, height: 1000 };
    // fp (0.9, 0.2) of the original is (0.8, 0.2) of the crop, which the quarter turn takes to (0.8, 0.8).
    const win = focalWindow(1000, 800, 200, 100, 0.8, 0.8);
    expect(win).toEqual({ coverWidth: 200, coverHeight: 160, left: 0, top: 60 });
    await expectSame(
      "crop=800,0,800,1000&rot=90&w=200&h=100&fp=0.9,0.2",
      pass(original().extract(region))
        .then((n) => pass(n.rotate(90)))
        .then((n) => pass(n.resize(win.coverWidth, win.coverHeight, { fit: "fill" })))
        .then((n) => n.extract({ left: win.left, top: win.top, width: 200, height: 100 })),
    );
    await expectSame(
      "crop=100,200,600,300&flip=v&w=300",
      pass(original().extract({ left: 100, top: 200, width: 600, height: 300 }))
        .then((n) => pass(n.flip()))
        .then((n) => n.resize(300)),
    );
  });

  it("crop and rot apply after EXIF orientation", async () => {
    const upright = () => sharp(sideways).autoOrient();
    await expectSame(
      "crop=10,20,200,300",
      upright().extract({ left: 10, top: 20, width: 200, height: 300 }),
      "sideways.jpg",
    );
    await expectSame(
      "rot=90",
      pass(upright()).then((n) => n.rotate(90)),
      "sideways.jpg",
    );
    // fp is a point of the upright picture (250x400): cover 100x160, window at 0.8 x 160 - 50 = 78, clamped to 60.
    await expectSame(
      "w=100&h=100&fp=0.2,0.8",
      pass(upright())
        .then((n) => pass(n.resize(100, 160, { fit: "fill" })))
        .then((n) => n.extract({ left: 0, top: 60, width: 100, height: 100 })),
      "sideways.jpg",
    );
    const { body } = await get(app, "/img/sideways.jpg?crop=0,0,250,400");
    expect(await sharp(body).metadata()).toMatchObject({ width: 250, height: 400 });
  });

  it("bg colours contain padding, and transparency flattened into JPEG", async () => {
    await expectSame(
      "w=400&h=400&fit=contain&bg=ff8000",
      original().resize(400, 400, { fit: "contain", background: "#ff8000" }),
    );
    await expectSame(
      "w=400&h=400&fit=contain&bg=00ff0080",
      original().resize(400, 400, { fit: "contain", background: { r: 0, g: 255, b: 0, alpha: 128 / 255 } }),
    );
    const { res, body } = await get(app, "/img/alpha.png?f=jpeg&bg=f0f");
    expect(res.headers.get("content-type")).toBe("image/jpeg");
    const reference = await sharp(alpha)
      .flatten({ background: "#ff00ff" })
      .jpeg({ quality: 80, mozjpeg: true })
      .toBuffer();
    expect(meanDifference(await pixelsOf(body), await pixelsOf(reference))).toBeLessThan(SAME);
    // Without bg, white (as before).
    const white = await sharp(alpha).flatten({ background: "#ffffff" }).jpeg({ quality: 80, mozjpeg: true }).toBuffer();
    expect(
      meanDifference(await pixelsOf((await get(app, "/img/alpha.png?f=jpeg")).body), await pixelsOf(white)),
    ).toBeLessThan(SAME);
  });

  it.each([
    ["blur=0.3", (image: Sharp) => image.blur(0.3)],
    ["blur=4", (image: Sharp) => image.blur(4)],
    ["blur=100", (image: Sharp) => image.blur(100)],
    ["sharpen=0.5", (image: Sharp) => image.sharpen({ sigma: 0.5 })],
    ["sharpen=3", (image: Sharp) => image.sharpen({ sigma: 3 })],
  ] as const)("%s on the resized picture", async (query, effect) => {
    await expectSame(`w=400&${query}`, effect(original().resize(400)));
  });

  it("f=thumbhash is the ThumbHash of the picture scaled to fit 100x100, as base64 text", async () => {
    const { res, body } = await get(app, "/img/scene.jpg?f=thumbhash");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    const { data, info } = await sharp(sceneJpeg)
      .resize(100, 100, { fit: "inside" })
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const expected = Buffer.from(rgbaToThumbHash(info.width, info.height, data)).toString("base64");
    expect(body.toString()).toBe(expected);
    expect(thumbHashToApproximateAspectRatio(Buffer.from(body.toString(), "base64"))).toBeCloseTo(1.6, 0);
    // With a cover box: the placeholder of that crop (square), cached like a variant.
    const square = await get(app, "/img/scene.jpg?f=thumbhash&w=300&h=300&gravity=attention");
    const { data: squareData } = await sharp(sceneJpeg)
      .resize(100, 100, { position: sharp.strategy.attention })
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect(square.body.toString()).toBe(Buffer.from(rgbaToThumbHash(100, 100, squareData)).toString("base64"));
    const again = await get(app, "/img/scene.jpg?w=300&h=300&gravity=attention&f=thumbhash");
    expect(again.res.headers.get("x-cache")).toBe("HIT");
    expect(again.body.equals(square.body)).toBe(true);
  });
});

describe("validation: every bad value is a 400 naming its option", () => {
  let app: App;
  beforeAll(async () => {
    app = await proxyFor();
  });

  const BAD: Record<string, readonly string[]> = {
    gravity: ["", "centre", "north", "Top", "smart"],
    fp: ["", "0.5", "1.5,0.5", "-0.1,0.5", "0.5,0.5,0.5", "a,b"],
    crop: ["", "0,0,0,10", "1,2,3", "-1,0,10,10", "0,0,100001,10", "1.5,0,10,10"],
    rot: ["", "0", "45", "360", "-90"],
    flip: ["", "x", "vh", "H"],
    bg: ["", "ff", "fffff", "#fff", "red", "ggg"],
    blur: ["", "0", "0.2", "101", "1e1"],
    sharpen: ["", "0.4", "11", "abc"],
    p: ["", "thumb"],
    dl: ["", "0", "true"],
    f: ["thumb", "blurhash"],
    w: ["auto"],
    dpr: ["auto"],
  };

  it.each(Object.entries(BAD))("%s: %j", async (key, values) => {
    for (const raw of values) {
      const { res, body } = await get(app, `/img/never.png?${key}=${encodeURIComponent(raw)}`);
      expect(res.status, `${key}=${raw}`).toBe(400);
      const json = JSON.parse(body.toString()) as { error: string; message: string };
      expect(json.error).toBe("INVALID_OPTIONS");
      expect(json.message, `${key}=${raw}`).toContain(`option ${key}:`);
    }
    expect(origin.count("/never.png")).toBe(0); // refused before any fetch
  });

  it("refuses fp with gravity, and a crop outside the picture once its size is known", async () => {
    const both = await get(app, "/img/scene.png?w=10&h=10&fp=0.5,0.5&gravity=top");
    expect(both.res.status).toBe(400);
    expect(both.body.toString()).toContain("option fp:");
    for (const crop of ["1500,0,200,100", "0,900,10,101", "1600,0,1,1"]) {
      const { res, body } = await get(app, `/img/scene.png?crop=${crop}`);
      expect(res.status, crop).toBe(400);
      const json = JSON.parse(body.toString()) as { error: string; message: string };
      expect(json).toMatchObject({ error: "INVALID_OPTIONS" });
      expect(json.message).toContain("option crop:");
      expect(json.message).toContain("1600x1000 px image");
    }
    // The same region inside the picture works; an EXIF-turned picture is measured upright (250x400).
    expect((await get(app, "/img/scene.png?crop=1500,0,100,100")).res.status).toBe(200);
    expect((await get(app, "/img/sideways.jpg?crop=0,0,250,401")).body.toString()).toContain("250x400 px image");
  });
});

describe("presets", () => {
  const PRESETS = {
    thumb: "w=160&h=160&fit=cover&gravity=attention",
    hero: "w=800&q=70&f=webp",
    placeholder: "f=thumbhash&w=160&h=160",
  };

  it("expands p=<name>, and options beside it override the preset's", async () => {
    const app = await proxyFor({ presets: PRESETS });
    const thumb = await get(app, "/img/scene.png?p=thumb&f=png");
    expect(await sharp(thumb.body).metadata()).toMatchObject({ width: 160, height: 160 });
    const reference = await pixelsOf(sharp(scene).resize(160, 160, { position: sharp.strategy.attention }));
    expect(meanDifference(await pixelsOf(thumb.body), reference)).toBeLessThan(SAME);
    const wider = await get(app, "/img/scene.png?w=240&p=thumb&f=png");
    expect(await sharp(wider.body).metadata()).toMatchObject({ width: 240, height: 160 });
    const hero = await get(app, "/img/scene.png?p=hero");
    expect(hero.res.headers.get("content-type")).toBe("image/webp");
    expect((await get(app, "/img/scene.png?p=placeholder")).res.headers.get("content-type")).toContain("text/plain");
    const unknown = await get(app, "/img/scene.png?p=nope");
    expect(unknown.res.status).toBe(400);
    expect(unknown.body.toString()).toContain("one of thumb, hero, placeholder");
  });

  it("with --presets-only accepts p alone (and serves originals)", async () => {
    const app = await proxyFor({ presets: PRESETS, presetsOnly: true });
    expect((await get(app, "/img/scene.png?p=thumb")).res.status).toBe(200);
    expect((await get(app, "/img/scene.png")).res.status).toBe(200);
    for (const query of ["w=100", "p=thumb&w=100", "dl=1", "f=thumbhash"]) {
      const { res, body } = await get(app, `/img/scene.png?${query}`);
      expect(res.status, query).toBe(400);
      expect(body.toString(), query).toContain("presets only (p=<name>: thumb, hero, placeholder)");
    }
  });

  it("stops the start with a ConfigError naming a bad preset and its bad option", async () => {
    let error: unknown;
    try {
      await proxyFor({ presets: { ...PRESETS, broken: "w=100&gravity=middle" } });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('preset "broken"');
    expect((error as ConfigError).message).toContain("option gravity:");
  });
});

describe("allowed widths and qualities", () => {
  it("refuses other values with a 400 listing the allowed ones; w x dpr is what must be allowed", async () => {
    const app = await proxyFor({ allowedWidths: [160, 320, 640], allowedQualities: [50, 75, 90] });
    expect((await get(app, "/img/scene.png?w=320&q=75&f=webp")).res.status).toBe(200);
    expect((await get(app, "/img/scene.png?w=160&dpr=2")).res.status).toBe(200);
    for (const [query, message] of [
      ["w=300", "300 px is not an allowed width; allowed widths: 160, 320, 640"],
      ["w=160&dpr=1.5", "w x dpr = 240 px is not an allowed width"],
      ["w=320&q=80", "80 is not an allowed quality; allowed qualities: 50, 75, 90"],
    ] as const) {
      const { res, body } = await get(app, `/img/scene.png?${query}`);
      expect(res.status, query).toBe(400);
      expect(body.toString(), query).toContain(message);
    }
  });
});

describe("client hints", () => {
  let app: App;
  beforeAll(async () => {
    app = await proxyFor({ clientHints: true });
  });
  const WIDTH_VARY = "Sec-CH-Width, Width, Sec-CH-Viewport-Width";

  it.each([
    ["w=auto", {}, 1280, WIDTH_VARY],
    ["w=auto", { "sec-ch-width": "500" }, 640, WIDTH_VARY],
    ["w=auto", { width: "300" }, 320, WIDTH_VARY],
    ["w=auto", { "sec-ch-viewport-width": "390" }, 640, WIDTH_VARY],
    ["w=auto&dpr=auto", { "sec-ch-viewport-width": "390", "sec-ch-dpr": "3" }, 1200, `Sec-CH-DPR, DPR, ${WIDTH_VARY}`],
    ["w=200&dpr=auto", { "sec-ch-dpr": "2" }, 400, "Sec-CH-DPR, DPR"],
    ["w=200&dpr=auto", { dpr: "2.625" }, 600, "Sec-CH-DPR, DPR"],
    ["w=200&dpr=auto", {}, 200, "Sec-CH-DPR, DPR"],
    ["w=auto&f=auto", { "sec-ch-width": "700", accept: "image/webp" }, 750, `Accept, ${WIDTH_VARY}`],
  ] as const)("%s with %j: %i px, Vary: %s", async (query, headers, width, vary) => {
    const { res, body } = await get(app, `/img/scene.png?${query}`, headers);
    expect(res.status).toBe(200);
    expect((await sharp(body).metadata()).width).toBe(width);
    expect(res.headers.get("vary")).toBe(vary);
    expect(res.headers.get("accept-ch")).toBe("Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width");
  });

  it("keys the cache by the resolved width, not the raw hint", async () => {
    const first = await get(app, "/img/k0.png?w=auto", { "sec-ch-width": "500" });
    const second = await get(app, "/img/k0.png?w=auto", { "sec-ch-width": "600" });
    const third = await get(app, "/img/k0.png?w=auto", { "sec-ch-width": "700" });
    expect([first, second, third].map((r) => r.res.headers.get("x-cache"))).toEqual(["MISS", "HIT", "MISS"]);
    expect((await get(app, "/img/k0.png?w=640")).res.headers.get("x-cache")).toBe("HIT");
    const plain = await get(app, "/img/scene.png?w=100");
    expect(plain.res.headers.get("vary")).toBeNull();
  });

  it("without --client-hints: w=auto is a 400 that says how to enable them, and no Accept-CH", async () => {
    const off = await proxyFor();
    const { res, body } = await get(off, "/img/scene.png?w=auto");
    expect(res.status).toBe(400);
    expect(body.toString()).toContain("--client-hints");
    expect((await get(off, "/img/scene.png?w=100")).res.headers.get("accept-ch")).toBeNull();
  });
});

describe("Content-Disposition", () => {
  let app: App;
  beforeAll(async () => {
    app = await proxyFor({ allowedSources: ["127.0.0.1"], allowPrivateOrigins: true });
  });

  it.each([
    ["/img/scene.png", 'inline; filename="scene.png"'],
    ["/img/scene.png?w=100&f=webp", 'inline; filename="scene.webp"'],
    ["/img/scene.jpg?w=100&f=avif", 'inline; filename="scene.avif"'],
    ["/img/scene.jpg?w=100", 'inline; filename="scene.jpg"'],
    ["/img/scene.jpg?f=thumbhash", 'inline; filename="scene.txt"'],
    ["/img/scene.png?dl=1", 'attachment; filename="scene.png"'],
    ["/img/scene.png?w=100&f=jpeg&dl=1", 'attachment; filename="scene.jpg"'],
    ["/img/say%20%22hi%22.jpg?w=50", 'inline; filename="say _hi_.jpg"'],
    [
      "/img/fotos/Gr%C3%B6%C3%9Fe%20%C3%B1.jpg?w=50&f=webp",
      "inline; filename=\"Gr__e _.webp\"; filename*=UTF-8''Gr%C3%B6%C3%9Fe%20%C3%B1.webp",
    ],
  ])("%s: %s", async (path, expected) => {
    const { res } = await get(app, path);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toBe(expected);
  });

  it("names remote sources safely: CR/LF and ../ never reach the header", async () => {
    const base = origin.url.replace(/\/$/, "");
    const crlf = await get(app, `/img?url=${encodeURIComponent(`${base}/a%0D%0ASet-Cookie:%20x=1.jpg`)}&w=50`);
    expect(crlf.res.status).toBe(200);
    expect(crlf.res.headers.get("content-disposition")).toBe('inline; filename="a_Set-Cookie: x=1.jpg"');
    expect(crlf.res.headers.get("set-cookie")).toBeNull();
    const traversal = await get(app, `/img?url=${encodeURIComponent(`${base}/x/..%2F..%2Fetc%2Fpasswd`)}&w=50&f=png`);
    expect(traversal.res.status).toBe(200);
    expect(traversal.res.headers.get("content-disposition")).toBe('inline; filename="passwd.png"');
  });

  it("is exposed to cross-origin scripts, and dl shares the variant's cache entry", async () => {
    const first = await get(app, "/img/k1.png?w=60&f=webp");
    expect(first.res.headers.get("access-control-expose-headers")).toContain("Content-Disposition");
    const download = await get(app, "/img/k1.png?f=webp&dl=1&w=60");
    expect(download.res.headers.get("x-cache")).toBe("HIT");
    expect(download.res.headers.get("content-disposition")).toBe('attachment; filename="k1.webp"');
    expect(download.body.equals(first.body)).toBe(true);
  });
});

describe("cache keys", () => {
  let app: App;
  let next = 2;
  beforeAll(async () => {
    app = await proxyFor({ clientHints: true, presets: { thumb: "w=120&h=120&gravity=attention" } });
  });

  it.each([
    ["gravity", "w=100&h=100&gravity=top", "w=100&h=100&gravity=bottom"],
    ["gravity", "w=100&h=100&gravity=attention", "w=100&h=100&gravity=entropy"],
    ["fp", "w=100&h=100&fp=0.1,0.1", "w=100&h=100&fp=0.9,0.1"],
    ["crop", "crop=0,0,100,100", "crop=0,0,100,101"],
    ["rot", "rot=90&w=50", "rot=270&w=50"],
    ["flip", "flip=h&w=50", "flip=v&w=50"],
    ["bg", "w=50&h=50&fit=contain&bg=000", "w=50&h=50&fit=contain&bg=fff"],
    ["blur", "w=50&blur=1", "w=50&blur=2"],
    ["sharpen", "w=50&sharpen=1", "w=50&sharpen=2"],
    ["p", "p=thumb", "p=thumb&w=100"],
    ["f=thumbhash", "f=thumbhash", "f=thumbhash&w=100&h=100"],
    ["w=auto", "w=auto", "w=auto&dpr=2"],
  ])("two values of %s are two entries", async (_, a, b) => {
    const path = `/img/k${next++}.png`;
    const before = app.variants.stats().entries;
    expect((await get(app, `${path}?${a}`)).res.headers.get("x-cache")).toBe("MISS");
    expect((await get(app, `${path}?${b}`)).res.headers.get("x-cache")).toBe("MISS");
    expect(app.variants.stats().entries).toBe(before + 2);
  });

  it.each([
    ["gravity", "w=100&h=100&gravity=top", "gravity=top&h=100&w=100"],
    ["fp", "w=100&h=100&fp=0.5,0.5", "fp=0.50,0.5000&h=100&w=100"],
    ["crop", "crop=10,10,100,100&w=50", "w=50&crop=10,10,100,100"],
    ["rot+flip", "rot=180&flip=hv&w=50", "w=50"],
    ["flip", "flip=v&w=50", "rot=180&flip=h&w=50"],
    ["bg", "w=50&h=50&fit=contain&bg=fff", "bg=FFFFFFFF&fit=contain&h=50&w=50"],
    ["blur", "w=50&blur=1.50", "blur=1.5&w=50"],
    ["p", "p=thumb", "w=120&gravity=attention&h=120"],
    ["dl", "w=50", "dl=1&w=50"],
    ["f=thumbhash", "f=thumbhash&q=50", "f=thumbhash&blur=3"],
  ])("one normalised value of %s in any order is one entry", async (_, a, b) => {
    const path = `/img/k${next++}.png`;
    const before = app.variants.stats().entries;
    expect((await get(app, `${path}?${a}`)).res.headers.get("x-cache")).toBe("MISS");
    expect((await get(app, `${path}?${b}`)).res.headers.get("x-cache")).toBe("HIT");
    expect(app.variants.stats().entries).toBe(before + 1);
  });
});

describe("signed URLs", () => {
  const KEY = "issue-19-key";

  it("sign and verify every new option; a changed option is refused", async () => {
    const app = await proxyFor({ signingKeys: [KEY], clientHints: true, presets: { thumb: "w=80&h=80" } });
    for (const query of [
      "crop=0,0,400,400&rot=90&flip=h&w=100",
      "w=200&h=100&fp=0.2,0.8&bg=fff&blur=1&sharpen=1",
      "w=200&h=200&gravity=attention",
      "p=thumb",
      "f=thumbhash",
      "w=auto&dpr=auto",
      "w=50&dl=1",
    ]) {
      const signed = signImageUrl(`/img/scene.png?${query}`, KEY);
      expect((await get(app, signed, { "sec-ch-width": "300" })).res.status, query).toBe(200);
    }
    const signed = signImageUrl("/img/scene.png?crop=0,0,400,400", KEY);
    expect((await get(app, signed.replace("crop=0%2C0%2C400%2C400", "crop=0%2C0%2C400%2C401"))).res.status).toBe(403);
    expect((await get(app, signed.replace("crop=", "p=thumb&crop="))).res.status).toBe(403);
    expect((await get(app, "/img/scene.png?p=thumb")).res.status).toBe(403);
  });
});

describe("bounded and coalesced like every transform", () => {
  it("answers 30 concurrent requests for one new smart crop with one fetch and one transform", async () => {
    const app = await proxyFor();
    const results = await Promise.all(
      Array.from(
        { length: 30 },
        async () => (await get(app, "/img/herd.png?w=300&h=300&gravity=attention&rot=90")).res.status,
      ),
    );
    expect(results.every((status) => status === 200)).toBe(true);
    expect(origin.count("/herd.png")).toBe(1);
    expect(app.transformer.stats()).toMatchObject({ transforms: 1, renders: 1 });
  });
});
