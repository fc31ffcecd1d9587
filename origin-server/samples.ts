import { mkdir, readdir, rename, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { isImageFileName } from "./image-files.ts";
import { mixSeed, paintSample } from "./sample-pixels.ts";
import type { PainterKind } from "./sample-pixels.ts";

/** 4K UHD: the size of the originals the proxy is built for. */
export const SAMPLE_WIDTH = 3840;
export const SAMPLE_HEIGHT = 2160;
export const DEFAULT_SAMPLE_COUNT = 12;

export interface SampleOptions {
  dir: string;
  count: number;
  seed: number;
  onProgress?: (done: number, total: number, file: string) => void;
}

export type SampleFormat = "jpeg" | "png" | "webp";

/** One original of the library, before it is generated. */
export interface PlannedSample {
  /** Relative to the library's directory. */
  readonly file: string;
  readonly painter: PainterKind;
  readonly format: SampleFormat;
  /** Pixels as stored in the file. */
  readonly width: number;
  readonly height: number;
  /** EXIF orientation written to the file (6 = rotate 90° clockwise to display); absent means none. */
  readonly orientation?: number;
  /** Size as a viewer shows it, after the orientation. */
  readonly displayWidth: number;
  readonly displayHeight: number;
}

interface CycleEntry {
  readonly name: string;
  readonly painter: PainterKind;
  readonly format: SampleFormat;
  readonly isPortrait?: true;
}

/**
 * Twelve originals, repeated for larger counts: 10 JPEG (one of them a portrait stored sideways with EXIF
 * orientation 6), 1 PNG and 1 WebP. The special cases come first so a small library (tests use 4) has every format.
 */
const CYCLE: readonly CycleEntry[] = [
  { name: "landscape", painter: "landscape", format: "jpeg" },
  { name: "portrait-exif", painter: "landscape", format: "jpeg", isPortrait: true },
  { name: "gradient", painter: "gradient", format: "png" },
  { name: "noise", painter: "noise", format: "webp" },
  { name: "texture", painter: "texture", format: "jpeg" },
  { name: "clouds", painter: "clouds", format: "jpeg" },
  { name: "landscape", painter: "landscape", format: "jpeg" },
  { name: "texture", painter: "texture", format: "jpeg" },
  { name: "clouds", painter: "clouds", format: "jpeg" },
  { name: "landscape", painter: "landscape", format: "jpeg" },
  { name: "texture", painter: "texture", format: "jpeg" },
  { name: "landscape", painter: "landscape", format: "jpeg" },
];

const EXTENSIONS: Readonly<Record<SampleFormat, string>> = { jpeg: "jpg", png: "png", webp: "webp" };

/** What `generateSamples` would write for `count`, in order; image n is the same whatever the count. */
export function planSamples(count: number): PlannedSample[] {
  const plan: PlannedSample[] = [];
  for (let index = 0; index < count; index++) {
    const entry = CYCLE[index % CYCLE.length]!; // modulo keeps it in range
    const file = `${entry.name}-${String(index + 1).padStart(2, "0")}.${EXTENSIONS[entry.format]}`;
    const common = { file, painter: entry.painter, format: entry.format, width: SAMPLE_WIDTH, height: SAMPLE_HEIGHT };
    plan.push(
      entry.isPortrait
        ? { ...common, orientation: 6, displayWidth: SAMPLE_HEIGHT, displayHeight: SAMPLE_WIDTH }
        : { ...common, displayWidth: SAMPLE_WIDTH, displayHeight: SAMPLE_HEIGHT },
    );
  }
  return plan;
}

/**
 * Writes a deterministic library of 4K originals into `dir` (same seed → byte-identical files), each atomically
 * (temp file + rename) so the origin never serves half a file. Painting (JS, this thread) overlaps the previous
 * image's encoding (libvips, the thread pool). Returns the paths relative to `dir`, in plan order.
 */
export async function generateSamples(options: SampleOptions): Promise<{ files: string[] }> {
  const plan = planSamples(options.count);
  await mkdir(options.dir, { recursive: true });
  let done = 0;
  let encoding: Promise<void> | undefined;
  for (const [index, sample] of plan.entries()) {
    const pixels = paintPlanned(sample, mixSeed(options.seed, index));
    const previous = encoding;
    encoding = encodeSample(sample, pixels).then(async (bytes) => {
      await writeAtomically(join(options.dir, sample.file), bytes);
      done++;
      options.onProgress?.(done, plan.length, sample.file);
    });
    encoding.catch(() => undefined); // awaited below; this only stops an early rejection being reported as unhandled
    await previous;
  }
  await encoding;
  return { files: plan.map((sample) => sample.file) };
}

/** Raw RGB for a planned sample, in display orientation (a portrait is painted upright and rotated when encoded). */
function paintPlanned(sample: PlannedSample, seed: number): Buffer {
  return paintSample(sample.painter, sample.displayWidth, sample.displayHeight, seed);
}

async function encodeSample(sample: PlannedSample, pixels: Buffer): Promise<Buffer> {
  let image = sharp(pixels, { raw: { width: sample.displayWidth, height: sample.displayHeight, channels: 3 } });
  if (sample.orientation === 6) {
    // Orientation 6 tells viewers to turn the stored pixels 90° clockwise, so store them turned 90° anticlockwise.
    image = image.rotate(270).withMetadata({ orientation: 6 });
  }
  switch (sample.format) {
    case "jpeg":
      return image.jpeg({ quality: 90 }).toBuffer();
    case "png":
      return image.png({ compressionLevel: 6 }).toBuffer();
    case "webp":
      // effort 2: 0.7 s instead of 1.6 s at the default 4 for a 4K frame, about 10% larger.
      return image.webp({ quality: 82, effort: 2 }).toBuffer();
  }
}

async function writeAtomically(path: string, bytes: Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = join(dirname(path), `.${path.slice(dirname(path).length + 1)}.${process.pid}.tmp`);
  try {
    await writeFile(temp, bytes);
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

/** True when `dir` (or a folder below it) holds at least one image file; false when it is missing or has none. */
export async function hasImages(dir: string): Promise<boolean> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  for (const entry of entries) if (entry.isFile() && isImageFileName(entry.name)) return true;
  for (const entry of entries) {
    if (entry.isDirectory() && !entry.name.startsWith(".") && (await hasImages(join(dir, entry.name)))) return true;
  }
  return false;
}
