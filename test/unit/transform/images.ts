import { deflateSync } from "node:zlib";
import sharp from "sharp";
import type { Sharp } from "sharp";
import { buildConfig, defaultSettings } from "../../../src/config/config.ts";
import type { TransformConfig } from "../../../src/config/config.ts";

/** The proxy's default transform settings, with overrides. */
export function transformConfig(overrides: Partial<TransformConfig> = {}): TransformConfig {
  return { ...buildConfig(defaultSettings()).transform, ...overrides };
}

/** Deterministic pseudo-random bytes (LCG): noise images compress like photos at their worst. */
export function noise(length: number, seed = 1): Buffer {
  const bytes = Buffer.alloc(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (state * 1_103_515_245 + 12_345) & 0x7fffffff;
    bytes[i] = state >>> 23;
  }
  return bytes;
}

export function noiseImage(width: number, height: number, channels: 3 | 4 = 3, seed = 1): Sharp {
  return sharp(noise(width * height * channels, seed), { raw: { width, height, channels } });
}

export function jpeg(width: number, height: number, quality = 80): Promise<Buffer> {
  return noiseImage(width, height).jpeg({ quality }).toBuffer();
}

export function png(width: number, height: number, channels: 3 | 4 = 3): Promise<Buffer> {
  return noiseImage(width, height, channels).png().toBuffer();
}

export interface ImageFacts {
  readonly format: string;
  readonly width: number;
  readonly height: number;
  readonly pages: number;
}

/** What a browser would see: format, one frame's size, frame count. AVIF reports as heif with av1 compression. */
export async function imageFacts(body: Buffer): Promise<ImageFacts> {
  const metadata = await sharp(body).metadata();
  const format = metadata.format === "heif" && metadata.compression === "av1" ? "avif" : metadata.format;
  return {
    format,
    width: metadata.width,
    height: metadata.pageHeight ?? metadata.height,
    pages: metadata.pages ?? 1,
  };
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (CRC_TABLE[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A well-formed PNG header (valid CRCs) claiming width x height RGB pixels, with a tiny body: a decompression bomb. */
export function pngHeaderBomb(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.alloc(1024))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}
