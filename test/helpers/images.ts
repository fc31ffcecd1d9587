import { createHash } from "node:crypto";
import sharp from "sharp";

/** Deterministic noisy RGB pixels: compress like a photograph, unlike flat colour. */
export function noisePixels(width: number, height: number, seed = 1): Buffer {
  const pixels = Buffer.allocUnsafe(width * height * 3);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < pixels.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const x = (i / 3) % width;
    pixels[i] = ((x * 255) / width + (state & 63)) & 0xff;
  }
  return pixels;
}

export async function makeJpeg(width: number, height: number, seed = 1, quality = 85): Promise<Buffer> {
  return sharp(noisePixels(width, height, seed), { raw: { width, height, channels: 3 } })
    .jpeg({ quality })
    .toBuffer();
}

export async function makePng(width: number, height: number, seed = 1): Promise<Buffer> {
  return sharp(noisePixels(width, height, seed), { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Decoded facts of an image response body. */
export async function imageFacts(
  body: Buffer,
): Promise<{ format: string | undefined; width: number | undefined; height: number | undefined }> {
  const meta = await sharp(body).metadata();
  return { format: meta.format, width: meta.width, height: meta.height };
}
