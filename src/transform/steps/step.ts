import type { Sharp } from "sharp";
import type { Fit, Gravity, Region } from "../options.ts";
import type { Orientation } from "../orientation.ts";

/** "thumbhash": the picture as raw RGBA at most 100x100, turned into a ThumbHash after sharp (see placeholder.ts). */
export type EncodedFormat = "avif" | "webp" | "jpeg" | "png" | "gif" | "thumbhash";

/** A cover crop centred on a focal point: resize to `coverWidth` x `coverHeight`, then cut `window`. */
export interface FocusCrop {
  readonly coverWidth: number;
  readonly coverHeight: number;
  /** In the oriented, resized picture: the box (or less, without enlarge), as near the point as the picture allows. */
  readonly window: Region;
}

/** Everything the steps need, decided once from the options and the original's header before any pixel is decoded. */
export interface RenderPlan {
  /** Requested box in device pixels (dpr applied, clamped); both undefined = keep the original size. */
  readonly width: number | undefined;
  readonly height: number | undefined;
  readonly fit: Fit;
  readonly enlarge: boolean;
  readonly maxOutputDimension: number;
  /** The picture the resize fits into the box: one frame after EXIF orientation, crop and a quarter turn. */
  readonly sourceWidth: number;
  readonly sourceHeight: number;
  /** Cut from the oriented original before the resize (from the turned original when the turn is a quarter). */
  readonly crop: Region | undefined;
  readonly orientation: Orientation;
  /** Which part a cover crop keeps (center unless asked); ignored when `focus` is set. */
  readonly gravity: Gravity;
  /** fp under a cover crop. */
  readonly focus: FocusCrop | undefined;
  /** sharp colour string (`#rrggbb` or `#rrggbbaa`) of contain padding and JPEG flattening; undefined: the defaults. */
  readonly background: string | undefined;
  readonly blur: number | undefined;
  readonly sharpen: number | undefined;
  readonly hasAlpha: boolean;
  readonly hasProfile: boolean;
  readonly format: EncodedFormat;
  /** Requested quality; undefined = the format's default. */
  readonly quality: number | undefined;
  readonly avifEffort: number;
}

/** One named stage of the pipeline; steps only add operations to the sharp chain, nothing runs until toBuffer(). */
export interface TransformStep {
  readonly name: string;
  apply(image: Sharp, plan: RenderPlan): Sharp;
}
