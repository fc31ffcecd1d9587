import type { TransformOptions } from "./options.ts";

/** Output box in device pixels: the requested CSS size times dpr, clamped to the output limit. */
export interface TargetSize {
  readonly width?: number;
  readonly height?: number;
}

/**
 * Folds dpr into width/height and clamps both with ONE factor so the requested aspect ratio survives the clamp:
 * w=6000 h=3000 dpr=2 with an 8192 limit gives 8192x4096, not 8192x6000.
 */
export function resolveTargetSize(
  options: Pick<TransformOptions, "width" | "height" | "dpr">,
  limits: { readonly maxOutputDimension: number },
): TargetSize {
  const { width, height, dpr } = options;
  if (width === undefined && height === undefined) return {};
  const max = limits.maxOutputDimension;
  const scale = Math.min(
    dpr,
    width === undefined ? Infinity : max / width,
    height === undefined ? Infinity : max / height,
  );
  const fold = (size: number): number => Math.min(max, Math.max(1, Math.round(size * scale)));
  return {
    ...(width === undefined ? {} : { width: fold(width) }),
    ...(height === undefined ? {} : { height: fold(height) }),
  };
}
