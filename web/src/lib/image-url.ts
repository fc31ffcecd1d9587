import { srcSet } from "imagika/url";
import type { ImageOptions } from "imagika/url";

// The URL builder is the package's own (url/index.js, `imagika/url`): the page writes URLs exactly as users of the
// package do. What stays here is the gallery's choice of widths.
export { encodeImagePath, imageUrl } from "imagika/url";
export type { Format, ImageOptions } from "imagika/url";

/** Widths offered in gallery `srcset`s: from a 2-column phone grid (160 px) up to a full-HD viewport. */
export const SRCSET_WIDTHS = [160, 320, 480, 640, 960, 1280, 1920] as const;

/**
 * The srcset widths worth offering for an original `originalWidth` px wide: the ladder up to that width, plus the
 * original width itself when it falls between two steps (asking for more would only make the proxy upscale or clamp).
 */
export function srcSetWidths(originalWidth: number, ladder: readonly number[] = SRCSET_WIDTHS): number[] {
  const widths = ladder.filter((width) => width <= originalWidth);
  const largest = widths[widths.length - 1];
  const top = ladder[ladder.length - 1] ?? originalWidth;
  if (originalWidth > 0 && (largest === undefined || (largest < originalWidth && originalWidth < top))) {
    widths.push(Math.round(originalWidth));
  }
  return widths;
}

/** `srcset` value for a gallery tile: one `url Nw` candidate per width. */
export function imageSrcSet(
  path: string,
  originalWidth: number,
  options: Omit<ImageOptions, "w" | "h" | "dpr"> = {},
): string {
  return srcSet(path, srcSetWidths(originalWidth), options);
}

/**
 * Width (CSS px) to ask for so an original fits a `boxWidth` × `boxHeight` box without upscaling, snapped up to the
 * srcset ladder so viewers of similar size share cached variants. The result times `dpr` never exceeds the original.
 */
export function fitWidth(
  original: { readonly width: number; readonly height: number },
  box: { readonly width: number; readonly height: number },
  dpr: number,
): number {
  const aspect = original.width / Math.max(1, original.height);
  const fitted = Math.max(1, Math.min(box.width, box.height * aspect));
  const snapped = SRCSET_WIDTHS.find((width) => width >= fitted) ?? Math.ceil(fitted);
  const ceiling = Math.floor(original.width / Math.max(1, dpr));
  return Math.max(1, Math.min(snapped, ceiling));
}
