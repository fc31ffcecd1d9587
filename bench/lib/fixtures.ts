import { writeFile } from "node:fs/promises";
import { createRandom } from "./mixed.ts";
import { join } from "node:path";
import sharp from "sharp";

export interface Fixture {
  /** Short name used in tables: "small" or "4k". */
  readonly id: string;
  readonly label: string;
  readonly fileName: string;
  readonly width: number;
  readonly height: number;
  readonly bytes: number;
}

interface FixtureSpec {
  readonly id: string;
  readonly label: string;
  readonly fileName: string;
  readonly width: number;
  readonly height: number;
  readonly quality: number;
  /** ± amplitude of the uniform grain added to smooth colour waves; it sets the file size (tuned, see below). */
  readonly grain: number;
  readonly seed: number;
}

/** Grain tuned on sharp 0.35.5: ±12 at q80 gives ~105 KB for 1280x720, ±22 at q90 ~3.0 MB for 3840x2160. */
const SPECS: readonly FixtureSpec[] = [
  {
    id: "small",
    label: "1280x720 JPEG ~100 KB",
    fileName: "small-1280.jpg",
    width: 1280,
    height: 720,
    quality: 80,
    grain: 12,
    seed: 1,
  },
  {
    id: "4k",
    label: "3840x2160 JPEG q90 ~3 MB",
    fileName: "original-4k.jpg",
    width: 3840,
    height: 2160,
    quality: 90,
    grain: 22,
    seed: 2,
  },
];

async function renderJpeg(spec: FixtureSpec): Promise<Buffer> {
  const { width, height, grain } = spec;
  const random = createRandom(spec.seed);
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const r = 128 + 90 * Math.sin(x / 97 + y / 211);
      const g = 128 + 90 * Math.sin(y / 67 + 1);
      const b = 128 + 90 * Math.cos((x + y) / 151);
      // 128 ± 90 ± grain stays inside 0-255 (16-240 at ±22): a Uint8Array store would wrap, not clamp.
      pixels[i] = r + (random() - 0.5) * 2 * grain;
      pixels[i + 1] = g + (random() - 0.5) * 2 * grain;
      pixels[i + 2] = b + (random() - 0.5) * 2 * grain;
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: spec.quality })
    .toBuffer();
}

/** Writes the two deterministic originals into `dir`. */
export async function writeFixtures(dir: string): Promise<Fixture[]> {
  const fixtures: Fixture[] = [];
  for (const spec of SPECS) {
    const jpeg = await renderJpeg(spec);
    await writeFile(join(dir, spec.fileName), jpeg);
    fixtures.push({
      id: spec.id,
      label: spec.label,
      fileName: spec.fileName,
      width: spec.width,
      height: spec.height,
      bytes: jpeg.byteLength,
    });
  }
  return fixtures;
}
