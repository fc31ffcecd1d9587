import type { ImageFormat } from "../image-format.ts";
import { resizeOptions } from "./steps/resize.ts";
import type { EncodedFormat, RenderPlan } from "./steps/step.ts";

/**
 * Peak memory one transform adds while it runs, estimated from the header before any decode, so the memory budget
 * can admit, queue or refuse it (issue 18). Measured here with sharp 0.35.5 (libvips 8.18.7, one thread, cache
 * off): VmHWM minus RSS before, one 4K JPEG per process, `fit: inside`:
 *
 *   output (px)            AVIF (effort 0)   WebP      JPEG (mozjpeg)   PNG
 *   1280x720   (0.9 Mpx)   32.5 MiB          14.8      14.8             11.9
 *   2400x1350  (3.2 Mpx)   86.5              43.8      39.3             24.2
 *   3840x2160  (8.3 Mpx)   173.7             95.2      69.0             24.2
 *
 * So the encoders hold the whole output (AVIF ~22-28 bytes per output pixel, WebP ~12-15, JPEG ~9-13: mozjpeg's
 * progressive scans keep every coefficient), while libvips streams the decode: a JPEG or WebP source is decoded at
 * its shrink-on-load scale, line by line. Two things decode a whole image into memory: an EXIF rotation (a
 * portrait stored sideways: 4K → 2160x3840 AVIF measured 199.7 MiB, WebP 117.2) and sources without shrink-on-load
 * (PNG, TIFF, GIF, HEIF: a 4K PNG to 400 px WebP measured 20.2 MiB, ~its 24.9 MB of decoded RGB).
 */
const BYTES_PER_OUTPUT_PIXEL: Readonly<Record<EncodedFormat, number>> = {
  avif: 30,
  webp: 16,
  jpeg: 14,
  png: 9,
  gif: 12,
};

/** libvips' per-job buffers and the encoder's fixed cost: a 400 px JPEG measured 3.1 MiB, a 400 px AVIF 8.9 MiB. */
const FIXED_BYTES = 4 * 1024 * 1024;
const FIXED_AVIF_BYTES = 8 * 1024 * 1024;

export interface WorkingSetInput {
  readonly sourceFormat: ImageFormat;
  /** Stored size of one frame (before EXIF rotation). */
  readonly sourceWidth: number;
  readonly sourceHeight: number;
  readonly channels: number;
  readonly isRotated: boolean;
  readonly outputWidth: number;
  readonly outputHeight: number;
  readonly frames: number;
  readonly format: EncodedFormat;
}

/** Bytes of memory a transform is expected to add at its peak. */
export function estimateWorkingSet(input: WorkingSetInput): number {
  const outputPixels = input.outputWidth * input.outputHeight * input.frames;
  const sourcePixels = input.sourceWidth * input.sourceHeight * input.frames;
  const hasShrinkOnLoad = input.sourceFormat === "jpeg" || input.sourceFormat === "webp";
  // Shrink-on-load decodes at 1/2, 1/4 or 1/8 of the size, never below the output.
  const ratio = Math.max(1, Math.sqrt(sourcePixels / Math.max(1, outputPixels)));
  const shrink = hasShrinkOnLoad ? Math.min(8, 2 ** Math.floor(Math.log2(ratio))) : 1;
  const decodedBytes = (sourcePixels / (shrink * shrink)) * Math.max(3, input.channels);
  const isWholeDecode = input.isRotated || !hasShrinkOnLoad;
  return Math.ceil(
    (input.format === "avif" ? FIXED_AVIF_BYTES : FIXED_BYTES) +
      outputPixels * BYTES_PER_OUTPUT_PIXEL[input.format] +
      (isWholeDecode ? decodedBytes : 0),
  );
}

/** Upper bound of the output size a plan produces (one frame), from the same resize options the pipeline uses. */
export function expectedOutputSize(plan: RenderPlan): { width: number; height: number } {
  const options = resizeOptions(plan);
  const { sourceWidth: sw, sourceHeight: sh } = plan;
  const width = options.width ?? sw;
  const height = options.height ?? sh;
  if (options.fit !== "inside") {
    // cover, contain, fill: the box itself; without enlargement never more than the source on either side
    return options.withoutEnlargement === true
      ? { width: Math.min(width, sw), height: Math.min(height, sh) }
      : { width, height };
  }
  let scale = Math.min(width / sw, height / sh);
  if (options.withoutEnlargement === true) scale = Math.min(scale, 1);
  return { width: Math.max(1, Math.round(sw * scale)), height: Math.max(1, Math.round(sh * scale)) };
}
