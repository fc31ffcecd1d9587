import sharp from "sharp";
import type { ResizeOptions } from "sharp";
import type { Gravity } from "../options.ts";
import type { RenderPlan, TransformStep } from "./step.ts";

/** Our gravity names → sharp's positions; attention and entropy are libvips' smart crops (vips_smartcrop). */
const POSITIONS: Readonly<Record<Gravity, number | string>> = {
  center: "centre",
  top: "top",
  bottom: "bottom",
  left: "left",
  right: "right",
  "top-left": "left top",
  "top-right": "right top",
  "bottom-left": "left bottom",
  "bottom-right": "right bottom",
  attention: sharp.strategy.attention,
  entropy: sharp.strategy.entropy,
};

/**
 * Resizes with sharp's fit semantics, never past the original unless `enlarge`, and never past maxOutputDimension
 * on either side, whatever the aspect ratio. Staying a plain resize() in the same chain lets libvips use
 * shrink-on-load for JPEG and WebP (a 4K JPEG → 1280 px decodes at 1/2 scale: ~4x fewer pixels touched).
 */
export const resize: TransformStep = {
  name: "resize",
  apply: (image, plan) => image.resize(resizeOptions(plan)),
};

export function resizeOptions(plan: RenderPlan): ResizeOptions {
  const { width, height, maxOutputDimension: max, enlarge } = plan;
  if (width === undefined || height === undefined) {
    // One side (or none) given: fit inside a box whose free side is the limit, so a 1:100 strip asked for w=8192
    // cannot come out 819,200 px tall. With no size this only caps originals larger than the limit.
    const isCapOnly = width === undefined && height === undefined;
    return {
      width: width ?? max,
      height: height ?? max,
      fit: "inside",
      withoutEnlargement: isCapOnly || !enlarge,
    };
  }
  if (plan.focus !== undefined) {
    // fp: scale to cover the box exactly; the focus step cuts the window.
    return { width: plan.focus.coverWidth, height: plan.focus.coverHeight, fit: "fill" };
  }
  if (plan.fit === "outside") {
    // "outside" covers the box, so one side may exceed it: work out the size here, clamped like everything else.
    const { sourceWidth: sw, sourceHeight: sh } = plan;
    let scale = Math.max(width / sw, height / sh);
    if (!enlarge) scale = Math.min(scale, 1);
    scale = Math.min(scale, max / sw, max / sh);
    return {
      width: Math.max(1, Math.round(sw * scale)),
      height: Math.max(1, Math.round(sh * scale)),
      fit: "fill",
    };
  }
  return {
    width,
    height,
    fit: plan.fit,
    withoutEnlargement: !enlarge,
    ...(plan.fit === "cover" && plan.gravity !== "center" ? { position: POSITIONS[plan.gravity] } : {}),
    ...(plan.fit === "contain" && plan.background !== undefined ? { background: plan.background } : {}),
  };
}
