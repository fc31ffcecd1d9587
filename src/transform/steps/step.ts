import type { Sharp } from "sharp";
import type { Fit } from "../options.ts";

export type EncodedFormat = "avif" | "webp" | "jpeg" | "png" | "gif";

/** Everything the steps need, decided once from the options and the original's header before any pixel is decoded. */
export interface RenderPlan {
  /** Requested box in device pixels (dpr applied, clamped); both undefined = keep the original size. */
  readonly width: number | undefined;
  readonly height: number | undefined;
  readonly fit: Fit;
  readonly enlarge: boolean;
  readonly maxOutputDimension: number;
  /** One frame's size after EXIF orientation. */
  readonly sourceWidth: number;
  readonly sourceHeight: number;
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
