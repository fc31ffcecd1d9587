import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { ProxyError } from "../../../src/errors.ts";
import type { OutputFormat } from "../../../src/transform/negotiate.ts";
import { parseTransformOptions } from "../../../src/transform/options.ts";
import type { TransformOptions } from "../../../src/transform/options.ts";
import { Transformer } from "../../../src/transform/pipeline.ts";
import { imageFacts, jpeg, noise, noiseImage, png, transformConfig } from "./images.ts";

const transformer = new Transformer(transformConfig());

function options(query: string, maxOutputDimension = 8192): TransformOptions {
  return parseTransformOptions(new URLSearchParams(query), { maxOutputDimension }) ?? { dpr: 1, enlarge: false };
}

async function transformError(promise: Promise<unknown>): Promise<ProxyError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ProxyError) return error;
    throw error;
  }
  throw new Error("expected the transform to fail");
}

describe("Transformer: sizes", () => {
  const photo = jpeg(400, 300);

  it.each([
    ["w=200", 200, 150],
    ["h=100", 133, 100],
    ["w=200&h=200", 200, 200],
    ["w=200&h=200&fit=cover", 200, 200],
    ["w=200&h=200&fit=contain", 200, 200],
    ["w=200&h=200&fit=fill", 200, 200],
    ["w=200&h=200&fit=inside", 200, 150],
    ["w=200&h=200&fit=outside", 267, 200],
    ["w=100&dpr=2", 200, 150],
    ["w=100&h=100&dpr=1.5", 150, 150],
    ["w=800", 400, 300],
    ["w=800&enlarge=1", 800, 600],
    ["w=800&h=800&fit=inside", 400, 300],
    ["w=800&h=800&fit=inside&enlarge=1", 800, 600],
    ["w=800&h=100&fit=outside", 400, 300],
    ["w=800&h=100&fit=outside&enlarge=1", 800, 600],
    ["w=200&dpr=4", 400, 300],
    ["q=50", 400, 300],
  ])("%s on a 400x300 JPEG gives %ix%i", async (query, width, height) => {
    const result = await transformer.transform(await photo, options(query), "original");
    expect(await imageFacts(result.body)).toMatchObject({ format: "jpeg", width, height });
    expect(result).toMatchObject({ format: "jpeg", width, height });
  });

  it("never scales the picture up without enlarge, whatever the fit", async () => {
    for (const fit of ["cover", "fill", "inside", "outside"]) {
      const result = await transformer.transform(await photo, options(`w=500&h=450&fit=${fit}`), "webp");
      const facts = await imageFacts(result.body);
      expect(facts.width, fit).toBeLessThanOrEqual(400);
      expect(facts.height, fit).toBeLessThanOrEqual(300);
    }
    // sharp's contain always fills the box: the 400x300 picture stays 400x300, centred, with black padding around.
    const contained = await transformer.transform(await photo, options("w=500&h=450&fit=contain"), "png");
    expect(await imageFacts(contained.body)).toMatchObject({ width: 500, height: 450 });
    const region = async (left: number, top: number, width: number, height: number) =>
      (await sharp(contained.body).extract({ left, top, width, height }).raw().toBuffer()).reduce((a, b) =>
        Math.max(a, b),
      );
    expect(await region(0, 0, 500, 75)).toBe(0);
    expect(await region(0, 75, 50, 300)).toBe(0);
    expect(await region(50, 75, 400, 300)).toBeGreaterThan(200);
  });

  it("letterboxes contain into the whole box when the picture itself shrinks", async () => {
    // 500x100 needs a 1/3 shrink of the 400x300 picture, so this is not enlargement: the pad fills the box.
    const result = await transformer.transform(await photo, options("w=500&h=100&fit=contain"), "png");
    expect(await imageFacts(result.body)).toMatchObject({ width: 500, height: 100 });
  });

  it("clamps width*dpr to maxOutputDimension, keeping the aspect ratio", async () => {
    const small = new Transformer(transformConfig({ maxOutputDimension: 300 }));
    const result = await small.transform(await photo, options("w=200&h=100&dpr=2", 300), "png");
    expect(await imageFacts(result.body)).toMatchObject({ width: 300, height: 150 });
  });

  it("keeps the free side of a very tall original within maxOutputDimension", async () => {
    const small = new Transformer(transformConfig({ maxOutputDimension: 500 }));
    const strip = await png(10, 1000);
    const result = await small.transform(strip, options("w=100&enlarge=1", 500), "png");
    expect(await imageFacts(result.body)).toMatchObject({ width: 5, height: 500 });
    const outside = await small.transform(strip, options("w=100&h=100&fit=outside&enlarge=1", 500), "png");
    expect(await imageFacts(outside.body)).toMatchObject({ width: 5, height: 500 });
  });

  it("shrinks an original larger than maxOutputDimension even when no size is asked for", async () => {
    const small = new Transformer(transformConfig({ maxOutputDimension: 200 }));
    const result = await small.transform(await photo, options("f=webp", 200), "webp");
    expect(await imageFacts(result.body)).toMatchObject({ format: "webp", width: 200, height: 150 });
  });

  it("turns an EXIF orientation 6 (rotated) JPEG upright", async () => {
    const sideways = await noiseImage(200, 100).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect(await sharp(sideways).metadata()).toMatchObject({ width: 200, height: 100, orientation: 6 });
    const whole = await transformer.transform(sideways, options("f=png"), "png");
    expect(await imageFacts(whole.body)).toMatchObject({ width: 100, height: 200 });
    const resized = await transformer.transform(sideways, options("w=50"), "original");
    expect(await imageFacts(resized.body)).toMatchObject({ format: "jpeg", width: 50, height: 100 });
    expect((await sharp(resized.body).metadata()).orientation).toBeUndefined();
  });

  it("reports queue and transform times", async () => {
    const result = await transformer.transform(await photo, options("w=100"), "webp");
    expect(result.queueMs).toBeGreaterThanOrEqual(0);
    expect(result.transformMs).toBeGreaterThan(0);
  });
});

describe("Transformer: formats", () => {
  it.each(["avif", "webp", "jpeg", "png"] as const)("encodes %s", async (format) => {
    const result = await transformer.transform(await jpeg(320, 240), options("w=160"), format);
    expect(await imageFacts(result.body)).toMatchObject({ format, width: 160, height: 120 });
    expect(result.format).toBe(format);
  });

  it.each([
    ["jpeg", () => jpeg(64, 48), "jpeg"],
    ["png", () => png(64, 48), "png"],
    ["webp", () => noiseImage(64, 48).webp().toBuffer(), "webp"],
    ["avif", () => noiseImage(64, 48).avif({ effort: 0 }).toBuffer(), "avif"],
    ["gif", () => noiseImage(64, 48).gif().toBuffer(), "gif"],
    ["tiff", () => noiseImage(64, 48).tiff().toBuffer(), "jpeg"],
    ["tiff with alpha", () => noiseImage(64, 48, 4).tiff({ compression: "lzw" }).toBuffer(), "png"],
  ] as const)("keeps a %s original's format for f=original, or picks one browsers show", async (_, make, expected) => {
    const result = await transformer.transform(await make(), options("w=32"), "original");
    expect(await imageFacts(result.body)).toMatchObject({ format: expected, width: 32, height: 24 });
  });

  it("flattens transparency onto white for JPEG", async () => {
    const clear = await sharp({
      create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    const result = await transformer.transform(clear, options("f=jpeg"), "jpeg");
    const { data } = await sharp(result.body).raw().toBuffer({ resolveWithObject: true });
    expect(Math.min(...data)).toBeGreaterThan(240);
  });

  it("makes a lossy palette PNG when q is given, a lossless one otherwise", async () => {
    const original = await png(64, 64);
    const lossless = await transformer.transform(original, options("f=png"), "png");
    const palette = await transformer.transform(original, options("f=png&q=50"), "png");
    expect((await sharp(lossless.body).metadata()).isPalette).toBe(false);
    expect((await sharp(palette.body).metadata()).isPalette).toBe(true);
  });

  it("strips EXIF but converts a tagged original to sRGB and tags it", async () => {
    const tagged = await noiseImage(64, 64)
      .withIccProfile("p3")
      .withExif({ IFD0: { Copyright: "someone", Artist: "me" } })
      .jpeg()
      .toBuffer();
    expect(await sharp(tagged).metadata()).toMatchObject({ hasProfile: true });
    const result = await transformer.transform(tagged, options("w=32"), "webp");
    const metadata = await sharp(result.body).metadata();
    expect(metadata.exif).toBeUndefined();
    expect(metadata.hasProfile).toBe(true);
    expect(metadata.icc?.includes(Buffer.from("sRGB", "utf16le").swap16())).toBe(true); // ICC v4 "desc" is UTF-16BE
    const untagged = await transformer.transform(await jpeg(64, 64), options("w=32"), "webp");
    expect((await sharp(untagged.body).metadata()).hasProfile).toBe(false);
  });

  describe("animated originals", () => {
    const frames = [0, 1, 2].map((i) =>
      noiseImage(48, 32, 3, i + 1)
        .png()
        .toBuffer(),
    );
    const animatedGif = Promise.all(frames).then((pages) =>
      sharp(pages, { join: { animated: true } })
        .gif({ delay: [100, 100, 100] })
        .toBuffer(),
    );

    it("renders only the first frame when maxAnimationFrames is 1", async () => {
      expect(await imageFacts(await animatedGif)).toMatchObject({ pages: 3, width: 48, height: 32 });
      const result = await transformer.transform(await animatedGif, options("w=24"), "webp");
      expect(await imageFacts(result.body)).toEqual({ format: "webp", width: 24, height: 16, pages: 1 });
    });

    it("keeps up to maxAnimationFrames frames for formats that animate", async () => {
      const animating = new Transformer(transformConfig({ maxAnimationFrames: 2 }));
      const webp = await animating.transform(await animatedGif, options("w=24"), "webp");
      expect(await imageFacts(webp.body)).toEqual({ format: "webp", width: 24, height: 16, pages: 2 });
      expect(webp).toMatchObject({ width: 24, height: 16 });
      const gif = await animating.transform(await animatedGif, options("w=24"), "original");
      expect(await imageFacts(gif.body)).toEqual({ format: "gif", width: 24, height: 16, pages: 2 });
    });

    it("takes the first frame for formats that cannot animate", async () => {
      const animating = new Transformer(transformConfig({ maxAnimationFrames: 10 }));
      const result = await animating.transform(await animatedGif, options("w=24"), "avif");
      expect(await imageFacts(result.body)).toEqual({ format: "avif", width: 24, height: 16, pages: 1 });
    });
  });
});

describe("Transformer: refusals", () => {
  it("refuses a truncated JPEG with UNSUPPORTED_IMAGE", async () => {
    const whole = await jpeg(400, 300, 90);
    const error = await transformError(
      transformer.transform(whole.subarray(0, Math.floor(whole.length / 2)), options("w=100"), "webp"),
    );
    expect(error.code).toBe("UNSUPPORTED_IMAGE");
    expect(error.status).toBe(422);
  });

  it("refuses a JPEG whose header is cut off with UNSUPPORTED_IMAGE", async () => {
    const whole = await jpeg(400, 300);
    const error = await transformError(transformer.transform(whole.subarray(0, 20), options("w=100"), "webp"));
    expect(error.code).toBe("UNSUPPORTED_IMAGE");
  });

  it("refuses random bytes with NOT_AN_IMAGE or UNSUPPORTED_IMAGE", async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const bytes = noise(2000, seed);
      const error = await transformError(transformer.transform(bytes, options("w=100"), "webp"));
      expect(["NOT_AN_IMAGE", "UNSUPPORTED_IMAGE"]).toContain(error.code);
      const disguised = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), bytes]);
      const disguisedError = await transformError(transformer.transform(disguised, options("w=100"), "webp"));
      expect(disguisedError.code).toBe("UNSUPPORTED_IMAGE");
    }
  });

  const svg = Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><script>alert(1)</script>' +
      '<rect width="40" height="20" fill="red"/></svg>',
  );

  it("refuses SVG (here with a <script>) by default", async () => {
    const error = await transformError(transformer.transform(svg, options("w=20"), "png"));
    expect(error.code).toBe("NOT_AN_IMAGE");
    expect(error.status).toBe(415);
  });

  it("rasterises SVG to PNG when allowSvg is set", async () => {
    const allowing = new Transformer(transformConfig({ allowSvg: true }));
    const result = await allowing.transform(svg, options("w=20"), "original");
    expect(await imageFacts(result.body)).toMatchObject({ format: "png", width: 20, height: 10 });
  });

  it("refuses an original over maxSourcePixels from its header", async () => {
    const small = new Transformer(transformConfig({ maxSourcePixels: 400 * 300 - 1 }));
    const error = await transformError(small.transform(await jpeg(400, 300), options("w=10"), "webp"));
    expect(error.code).toBe("SOURCE_TOO_LARGE");
    expect(error.status).toBe(413);
  });

  it(
    "answers TRANSFORM_TIMEOUT when a transform outlives timeoutMs, and frees its slot once sharp stops",
    {
      timeout: 60_000,
    },
    async () => {
      // AVIF effort 6 at q100 on 300x300 noise encodes for ~1.5 s here; the AV1 encoder does not stop at libvips'
      // timeout, so the slot stays taken until the encode ends.
      const slow = new Transformer(transformConfig({ timeoutMs: 1, avifEffort: 6, concurrency: 1 }));
      const error = await transformError(slow.transform(await jpeg(300, 300, 95), options("q=100"), "avif"));
      expect(error.code).toBe("TRANSFORM_TIMEOUT");
      expect(error.status).toBe(503);
      expect(slow.stats()).toMatchObject({ transforms: 0, failures: 1 });
      // libvips' own timeout is whole seconds; the slot is held until then, so poll generously.
      for (let i = 0; i < 500 && slow.stats().inFlight > 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(slow.stats().inFlight).toBe(0);
    },
  );

  it("refuses with OVERLOADED when the queue is full, and counts it as rejected", async () => {
    // The first job to pass its header check encodes a 1500x1500 WebP (~0.5 s); the others pass theirs within
    // milliseconds and find the only slot taken and no queue.
    const busy = new Transformer(transformConfig({ concurrency: 1, queue: 0 }));
    const big = await jpeg(1500, 1500);
    const formats: OutputFormat[] = ["webp", "webp", "webp"];
    const results = await Promise.allSettled(formats.map((format) => busy.transform(big, options(""), format)));
    const codes = results.map((r) => (r.status === "rejected" ? (r.reason as ProxyError).code : "ok"));
    expect(codes).toContain("ok");
    expect(codes).toContain("OVERLOADED");
    const refused = results.find((r) => r.status === "rejected");
    expect(((refused as PromiseRejectedResult).reason as ProxyError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(busy.stats()).toMatchObject({ rejected: codes.filter((c) => c === "OVERLOADED").length, failures: 0 });
  });
});
