import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_SAMPLE_COUNT, generateSamples, hasImages, planSamples } from "../../origin-server/samples.ts";

const MB = 1_000_000;

async function sha256(path: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(path))
    .digest("hex");
}

describe("planSamples", () => {
  it("plans a default library of at least 12 4K originals, mostly JPEG, with a PNG, a WebP and an EXIF portrait", () => {
    const plan = planSamples(DEFAULT_SAMPLE_COUNT);
    expect(plan.length).toBeGreaterThanOrEqual(12);
    const jpegs = plan.filter((sample) => sample.format === "jpeg");
    expect(jpegs.length / plan.length).toBeGreaterThanOrEqual(0.75);
    expect(plan.some((sample) => sample.format === "png")).toBe(true);
    expect(plan.some((sample) => sample.format === "webp")).toBe(true);
    for (const sample of plan) expect([sample.width, sample.height]).toEqual([3840, 2160]);
    const portraits = plan.filter((sample) => sample.orientation !== undefined);
    expect(portraits).toHaveLength(1);
    expect(portraits[0]).toMatchObject({ orientation: 6, displayWidth: 2160, displayHeight: 3840, format: "jpeg" });
    expect(new Set(plan.map((sample) => sample.painter))).toEqual(
      new Set(["landscape", "texture", "clouds", "noise", "gradient"]),
    );
  });

  it("names files uniquely and descriptively, with the format's extension", () => {
    const plan = planSamples(30);
    expect(new Set(plan.map((sample) => sample.file)).size).toBe(30);
    expect(plan.slice(0, 4).map((sample) => sample.file)).toEqual([
      "landscape-01.jpg",
      "portrait-exif-02.jpg",
      "gradient-03.png",
      "noise-04.webp",
    ]);
    for (const sample of plan) expect(sample.file).toMatch(/^[a-z-]+-\d{2,}\.(jpg|png|webp)$/);
  });

  it("keeps image n the same whatever the count, and puts every format in the first four", () => {
    expect(planSamples(4)).toEqual(planSamples(DEFAULT_SAMPLE_COUNT).slice(0, 4));
    expect(new Set(planSamples(4).map((sample) => sample.format))).toEqual(new Set(["jpeg", "png", "webp"]));
    expect(planSamples(4).some((sample) => sample.orientation === 6)).toBe(true);
  });
});

describe("generateSamples", () => {
  let base: string;
  let first: string;
  let second: string;
  let files: string[];
  const progress: [number, number, string][] = [];

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "imagika-samples-"));
    first = join(base, "first");
    second = join(base, "second");
    ({ files } = await generateSamples({
      dir: first,
      count: 4,
      seed: 42,
      onProgress: (done, total, file) => progress.push([done, total, file]),
    }));
    await generateSamples({ dir: second, count: 4, seed: 42 });
  });

  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it("writes the planned files, and no temp files are left behind", async () => {
    expect(files).toEqual(planSamples(4).map((sample) => sample.file));
    expect((await readdir(first)).sort()).toEqual([...files].sort());
  });

  it("reports progress once per file", () => {
    expect(progress.map(([done, total]) => [done, total])).toEqual([
      [1, 4],
      [2, 4],
      [3, 4],
      [4, 4],
    ]);
    expect(new Set(progress.map(([, , file]) => file))).toEqual(new Set(files));
  });

  it("is byte-identical for the same seed", async () => {
    for (const file of files) expect(await sha256(join(second, file)), file).toBe(await sha256(join(first, file)));
  });

  it("differs for another seed", async () => {
    const other = join(base, "other");
    const { files: otherFiles } = await generateSamples({ dir: other, count: 1, seed: 43 });
    expect(otherFiles).toEqual(["landscape-01.jpg"]);
    expect(await sha256(join(other, "landscape-01.jpg"))).not.toBe(await sha256(join(first, "landscape-01.jpg")));
  });

  it("stores 3840x2160 pixels in the planned formats; the portrait displays as 2160x3840", async () => {
    for (const sample of planSamples(4)) {
      const metadata = await sharp(join(first, sample.file)).metadata();
      expect(metadata.format, sample.file).toBe(sample.format);
      expect([metadata.width, metadata.height], sample.file).toEqual([3840, 2160]);
      expect(metadata.orientation, sample.file).toBe(sample.orientation);
      expect([metadata.autoOrient.width, metadata.autoOrient.height], sample.file).toEqual([
        sample.displayWidth,
        sample.displayHeight,
      ]);
    }
  });

  it("stores the portrait sideways so that it displays upright: sky at the top once oriented", async () => {
    const { data, info } = await sharp(join(first, "portrait-exif-02.jpg"))
      .autoOrient()
      .resize(54, 96, { fit: "fill" })
      .raw()
      .toBuffer({ resolveWithObject: true });
    const band = (fromRow: number, toRow: number) => {
      let blue = 0;
      let green = 0;
      for (let y = fromRow; y < toRow; y++) {
        for (let x = 0; x < info.width; x++) {
          const offset = (y * info.width + x) * info.channels;
          green += data[offset + 1] ?? 0;
          blue += data[offset + 2] ?? 0;
        }
      }
      return blue - green; // sky is bluer than green; hills are greener than blue
    };
    expect(band(0, 10)).toBeGreaterThan(band(86, 96));
  });

  it("makes JPEGs that compress like photographs: 2-8 MB each", async () => {
    for (const sample of planSamples(4).filter((planned) => planned.format === "jpeg")) {
      const { size } = await stat(join(first, sample.file));
      expect(size, sample.file).toBeGreaterThanOrEqual(2 * MB);
      expect(size, sample.file).toBeLessThanOrEqual(8 * MB);
    }
  });
});

describe("hasImages", () => {
  let base: string;

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "imagika-has-images-"));
  });

  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it("is false for a missing directory, an empty one, or one with only other files", async () => {
    expect(await hasImages(join(base, "missing"))).toBe(false);
    await mkdir(join(base, "empty"));
    expect(await hasImages(join(base, "empty"))).toBe(false);
    await mkdir(join(base, "other"));
    await writeFile(join(base, "other", "readme.txt"), "hello");
    await writeFile(join(base, "other", ".landscape-01.jpg.123.tmp"), "half written");
    expect(await hasImages(join(base, "other"))).toBe(false);
  });

  it("is true when an image sits at the top or in a subfolder", async () => {
    await mkdir(join(base, "nested", "a", "b"), { recursive: true });
    await writeFile(join(base, "nested", "a", "b", "photo.JPG"), "x");
    expect(await hasImages(join(base, "nested"))).toBe(true);
    await mkdir(join(base, "top"));
    await writeFile(join(base, "top", "pic.webp"), "x");
    expect(await hasImages(join(base, "top"))).toBe(true);
  });
});
