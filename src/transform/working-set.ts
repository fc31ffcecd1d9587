import type { ImageFormat } from "../shared/image-format.ts";
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
  thumbhash: 4, // raw RGBA, at most 100x100
};

/** libvips' per-job buffers and the encoder's fixed cost: a 400 px JPEG measured 3.1 MiB, a 400 px AVIF 8.9 MiB. */
const FIXED_BYTES = 4 * 1024 * 1024;
const FIXED_AVIF_BYTES = 8 * 1024 * 1024;

/**
 * The other operations, measured the same way (4K JPEG to WebP; the larger of two runs, and the same render without
 * the operation beside it):
 *
 *   rot=90, 400x400 (turned before the resize)     35.3 MiB (5.9): the whole decode (23.7) held and turned
 *   rot=90, 2160x3840 AVIF / WebP                   196.6 / 117.2: as an EXIF-rotated portrait
 *   rot=180, 400x400 / 3840x2160 (after resize)     7.3 (5.9) / 118.3 (95.6): the cover-scaled picture held to turn
 *   crop of the whole picture / its middle, 400 px  21.6 / 15.1 (5.4): no shrink-on-load, the rows at full width
 *   gravity=attention, 400² / 1280² / 2160²        8.9 / 37.5 / 83.4: a few MiB to rank the cover-scaled picture
 *   blur=100 at 1280x720                           23.3 (14.9): ~4 sigma rows of the output, as floats
 *   sharpen=1 at 1280x720 / sharpen=10 at 4K       21.1 (14.9) / 129.0 (95.6): 4-7 bytes per output pixel (LAB)
 *   f=thumbhash (100x56 raw RGBA)                   2.7
 *
 * So a quarter turn counts the whole decode 1.5 times; a crop decodes its rows at full width; a picture held whole
 * after the resize (half turn) costs 2 bytes per channel per pixel, a smart crop 4 MiB plus 1 byte per channel per
 * pixel of the picture it ranks; blur and sharpen add their buffers.
 */
const ROTATED_DECODE_FACTOR = 1.5;
const HELD_BYTES_PER_CHANNEL = 2;
const SMART_CROP_FIXED_BYTES = 4 * 1024 * 1024;
const SMART_CROP_BYTES_PER_CHANNEL = 1;
const BLUR_ROWS_PER_SIGMA = 4;
const BLUR_EXTRA_ROWS = 64;
const BLUR_BYTES_PER_PIXEL = 16; // 4 channels of float
const SHARPEN_BYTES_PER_PIXEL = 8;

export interface WorkingSetInput {
  readonly sourceFormat: ImageFormat;
  /** Stored size of one frame (before EXIF rotation). */
  readonly sourceWidth: number;
  readonly sourceHeight: number;
  readonly channels: number;
  /** EXIF 5-8: the picture is turned after the resize, its decode (at the shrink-on-load scale) held whole. */
  readonly isRotated: boolean;
  /**
   * sharp turns the whole original before the resize (rot=90/270, or any EXIF orientation once crop or fp asks sharp
   * to orient first): no shrink-on-load, and the full decode held while it turns.
   */
  readonly isTurnedFirst?: boolean | undefined;
  /** crop: the rows of the original it keeps (decoded at full width: a crop turns shrink-on-load off). */
  readonly cropRows?: number | undefined;
  readonly outputWidth: number;
  readonly outputHeight: number;
  /** Pixels of a picture held whole between the resize and the encoder (a half turn); 0 or absent: none. */
  readonly heldPixels?: number | undefined;
  /** gravity=attention/entropy: pixels of the cover-scaled picture the smart crop ranks. */
  readonly smartCropPixels?: number | undefined;
  readonly blurSigma?: number | undefined;
  readonly isSharpened?: boolean | undefined;
  readonly frames: number;
  readonly format: EncodedFormat;
}

/** Bytes of memory a transform is expected to add at its peak. */
export function estimateWorkingSet(input: WorkingSetInput): number {
  const outputPixels = input.outputWidth * input.outputHeight * input.frames;
  const sourcePixels = input.sourceWidth * input.sourceHeight * input.frames;
  const channels = Math.max(3, input.channels);
  const canShrinkOnLoad = input.sourceFormat === "jpeg" || input.sourceFormat === "webp";
  const isTurnedFirst = input.isTurnedFirst === true;
  const hasShrinkOnLoad = canShrinkOnLoad && input.cropRows === undefined && !isTurnedFirst;
  // Shrink-on-load decodes at 1/2, 1/4 or 1/8 of the size, never below the output.
  const ratio = Math.max(1, Math.sqrt(sourcePixels / Math.max(1, outputPixels)));
  const shrink = hasShrinkOnLoad ? Math.min(8, 2 ** Math.floor(Math.log2(ratio))) : 1;
  const decodedPixels =
    canShrinkOnLoad && !input.isRotated && !isTurnedFirst && input.cropRows !== undefined
      ? input.sourceWidth * input.cropRows * input.frames
      : sourcePixels / (shrink * shrink);
  const decodedBytes = decodedPixels * channels * (isTurnedFirst ? ROTATED_DECODE_FACTOR : 1);
  const isWholeDecode = input.isRotated || isTurnedFirst || !hasShrinkOnLoad;
  const heldBytes = (input.heldPixels ?? 0) * channels * HELD_BYTES_PER_CHANNEL;
  const smartCropBytes =
    input.smartCropPixels === undefined || input.smartCropPixels === 0
      ? 0
      : SMART_CROP_FIXED_BYTES + input.smartCropPixels * channels * SMART_CROP_BYTES_PER_CHANNEL;
  const blurBytes =
    input.blurSigma === undefined
      ? 0
      : Math.min(input.outputHeight, Math.ceil(BLUR_ROWS_PER_SIGMA * input.blurSigma) + BLUR_EXTRA_ROWS) *
        input.outputWidth *
        input.frames *
        BLUR_BYTES_PER_PIXEL;
  const sharpenBytes = input.isSharpened === true ? outputPixels * SHARPEN_BYTES_PER_PIXEL : 0;
  return Math.ceil(
    (input.format === "avif" ? FIXED_AVIF_BYTES : FIXED_BYTES) +
      outputPixels * BYTES_PER_OUTPUT_PIXEL[input.format] +
      (isWholeDecode ? decodedBytes : 0) +
      heldBytes +
      smartCropBytes +
      blurBytes +
      sharpenBytes,
  );
}

/** Upper bound of the output size a plan produces (one frame), from the same resize options the pipeline uses. */
export function expectedOutputSize(plan: RenderPlan): { width: number; height: number } {
  if (plan.focus !== undefined) return { width: plan.focus.window.width, height: plan.focus.window.height };
  const options = resizeOptions(plan);
  const { sourceWidth: sw, sourceHeight: sh } = plan;
  const width = options.width ?? sw;
  const height = options.height ?? sh;
  if (options.fit === "contain") return { width, height }; // sharp pads to the whole box, enlarge or not
  if (options.fit !== "inside") {
    // cover, fill: the box itself; without enlargement never more than the source on either side
    return options.withoutEnlargement === true
      ? { width: Math.min(width, sw), height: Math.min(height, sh) }
      : { width, height };
  }
  let scale = Math.min(width / sw, height / sh);
  if (options.withoutEnlargement === true) scale = Math.min(scale, 1);
  return { width: Math.max(1, Math.round(sw * scale)), height: Math.max(1, Math.round(sh * scale)) };
}

/** Pixels of the picture a cover resize makes before it is cropped to the box (what a smart crop or a turn holds). */
export function coverSize(plan: RenderPlan): { width: number; height: number } {
  if (plan.focus !== undefined) return { width: plan.focus.coverWidth, height: plan.focus.coverHeight };
  const { width = plan.sourceWidth, height = plan.sourceHeight, sourceWidth: sw, sourceHeight: sh } = plan;
  let scale = Math.max(width / sw, height / sh);
  if (!plan.enlarge) scale = Math.min(scale, 1);
  return { width: Math.max(1, Math.round(sw * scale)), height: Math.max(1, Math.round(sh * scale)) };
}
