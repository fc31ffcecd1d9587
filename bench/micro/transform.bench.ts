import sharp from "sharp";
import { bench, describe } from "vitest";
import { buildConfig, defaultSettings } from "../../src/config/config.ts";
import type { TransformConfig } from "../../src/config/config.ts";
import { negotiateFormat, VariantKeys, variantKey } from "../../src/transform/negotiate.ts";
import { parseTransformOptions, TransformOptionsParser } from "../../src/transform/options.ts";
import type { TransformOptions } from "../../src/transform/options.ts";
import { Transformer } from "../../src/transform/pipeline.ts";

const LIMITS = { maxOutputDimension: 8192 };
const CHROME_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
const QUERY = new URLSearchParams("w=640&h=480&dpr=2&fit=cover&q=75&f=auto");
const PARSED = parseTransformOptions(QUERY, LIMITS) ?? { dpr: 1, enlarge: false };

describe("options → cache key (per request, hot path)", () => {
  bench("parseTransformOptions", () => {
    parseTransformOptions(QUERY, LIMITS);
  });
  bench("variantKey", () => {
    variantKey(PARSED, "avif", LIMITS);
  });
  bench("parse + negotiate + variantKey", () => {
    const options = parseTransformOptions(QUERY, LIMITS) ?? PARSED;
    variantKey(options, negotiateFormat(options, CHROME_ACCEPT), LIMITS);
  });
  // What a request does now: both remembered after the first request with this query and Accept.
  const parser = new TransformOptionsParser(LIMITS);
  const keys = new VariantKeys(LIMITS);
  const rawQuery = QUERY.toString();
  bench("TransformOptionsParser.parse + VariantKeys.resolve (remembered)", () => {
    keys.resolve(parser.parse(rawQuery).options ?? PARSED, CHROME_ACCEPT);
  });
});

/**
 * A photo-like 3840x2160 JPEG q90: blurred noise for structure plus ±4 noise for sensor grain. Pure noise is the
 * worst case for every encoder (AVIF effort 2 on 1280x720 noise: 1.25 s) and says little about photos.
 */
async function photoLike4k(): Promise<Buffer> {
  const width = 3840;
  const height = 2160;
  const pixels = Buffer.alloc(width * height * 3);
  let state = 12_345;
  const next = (): number => (state = (state * 1_103_515_245 + 12_345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(next() * 256);
  const raw = { raw: { width, height, channels: 3 as const } };
  const structure = await sharp(pixels, raw).blur(6).normalise().raw().toBuffer();
  for (let i = 0; i < pixels.length; i++)
    pixels[i] = Math.min(255, Math.max(0, (structure[i] ?? 0) + (next() - 0.5) * 8));
  return sharp(pixels, raw).jpeg({ quality: 90 }).toBuffer();
}

/** Mean SSIM over 8x8 luma blocks and RGB PSNR against a lossless resize: enough to match encoder qualities. */
function compare(reference: Buffer, candidate: Buffer, width: number): { ssim: number; psnr: number } {
  const luma = (rgb: Buffer, i: number): number =>
    0.299 * (rgb[3 * i] ?? 0) + 0.587 * (rgb[3 * i + 1] ?? 0) + 0.114 * (rgb[3 * i + 2] ?? 0);
  const height = reference.length / 3 / width;
  const [c1, c2] = [(0.01 * 255) ** 2, (0.03 * 255) ** 2];
  let ssimSum = 0;
  let blocks = 0;
  for (let by = 0; by + 8 <= height; by += 8) {
    for (let bx = 0; bx + 8 <= width; bx += 8) {
      const a: number[] = [];
      const b: number[] = [];
      for (let y = 0; y < 8; y++)
        for (let x = 0; x < 8; x++) {
          const i = (by + y) * width + bx + x;
          a.push(luma(reference, i));
          b.push(luma(candidate, i));
        }
      const mean = (v: number[]): number => v.reduce((s, n) => s + n, 0) / v.length;
      const [ma, mb] = [mean(a), mean(b)];
      let [va, vb, cov] = [0, 0, 0];
      for (let k = 0; k < 64; k++) {
        const [da, db] = [(a[k] ?? 0) - ma, (b[k] ?? 0) - mb];
        va += da * da;
        vb += db * db;
        cov += da * db;
      }
      [va, vb, cov] = [va / 63, vb / 63, cov / 63];
      ssimSum += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
      blocks++;
    }
  }
  let squared = 0;
  for (let i = 0; i < reference.length; i++) squared += ((reference[i] ?? 0) - (candidate[i] ?? 0)) ** 2;
  return { ssim: ssimSum / blocks, psnr: 10 * Math.log10((255 * 255) / (squared / reference.length)) };
}

const original = await photoLike4k();
const base = buildConfig(defaultSettings()).transform;
const W1280: TransformOptions = { width: 1280, dpr: 1, enlarge: false };
const transformers = new Map<string, Transformer>();
function transformer(overrides: Partial<TransformConfig>): Transformer {
  const key = JSON.stringify(overrides);
  let found = transformers.get(key);
  if (found === undefined) transformers.set(key, (found = new Transformer({ ...base, ...overrides })));
  return found;
}

// Quality check printed once: at each format's default quality, how big is the variant and how close to a lossless
// resize? AVIF at its default should match WebP's SSIM with fewer bytes.
const reference = await sharp(original).resize(1280).raw().toBuffer();
for (const [label, format, effort] of [
  ["webp", "webp", 0],
  ["avif effort 0", "avif", 0],
  ["avif effort 2", "avif", 2],
] as const) {
  const result = await transformer({ avifEffort: effort }).transform(original, W1280, format);
  const decoded = await sharp(result.body).removeAlpha().raw().toBuffer();
  const { ssim, psnr } = compare(reference, decoded, 1280);
  console.log(
    `${label.padEnd(14)} ${String(result.body.length).padStart(7)} B  SSIM ${ssim.toFixed(4)}  PSNR ${psnr.toFixed(2)} dB`,
  );
}

describe("4K JPEG → 1280 px, cold (header check + decode with shrink-on-load + encode)", () => {
  const options = { iterations: 8, warmupIterations: 1, time: 0, warmupTime: 0 };
  bench(
    "webp q80",
    () =>
      transformer({})
        .transform(original, W1280, "webp")
        .then(() => {}),
    options,
  );
  bench(
    "avif q60 effort 0",
    () =>
      transformer({ avifEffort: 0 })
        .transform(original, W1280, "avif")
        .then(() => {}),
    options,
  );
  bench(
    "avif q60 effort 2",
    () =>
      transformer({ avifEffort: 2 })
        .transform(original, W1280, "avif")
        .then(() => {}),
    options,
  );
  bench(
    "jpeg q80 mozjpeg",
    () =>
      transformer({})
        .transform(original, W1280, "jpeg")
        .then(() => {}),
    options,
  );
});
