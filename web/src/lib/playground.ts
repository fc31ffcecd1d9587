import type { FocalPoint, Format, Gravity, ImageOptions, Region } from "imagika/url";
import { fitWidth, imageUrl } from "./image-url.ts";

/** "original" asks for the original bytes: no options at all. */
export type ViewerFormat = Exclude<Format, "png" | "thumbhash"> | "original";

/** Output shapes offered: `original` keeps the picture's own (no h); the others make a w x h box. */
export const ASPECTS = {
  original: 0,
  "1:1": 1,
  "4:3": 4 / 3,
  "3:2": 3 / 2,
  "16:9": 16 / 9,
  "4:5": 4 / 5,
  "9:16": 9 / 16,
} as const;
export type Aspect = keyof typeof ASPECTS;

export type BoxFit = "cover" | "contain" | "fill";
export type Rotation = 0 | 90 | 180 | 270;
export type FlipChoice = "none" | "h" | "v" | "hv";

/** Everything the playground's controls set; the URL is derived from it, the stage size and the DPR. */
export interface PlaygroundSettings {
  /** A --presets name, or "" for none. */
  readonly preset: string;
  /** "preset": leave w to the preset; "fit": the stage's size. */
  readonly width: "fit" | "preset" | number;
  readonly aspect: Aspect;
  readonly fit: BoxFit;
  readonly gravity: Gravity;
  /** Replaces gravity; fractions of the original (after EXIF orientation). */
  readonly focalPoint: FocalPoint | undefined;
  /** In the original's pixels (after EXIF orientation). */
  readonly crop: Region | undefined;
  readonly rotation: Rotation;
  readonly flip: FlipChoice;
  /** Sigma; 0 = off. */
  readonly blur: number;
  /** Sigma; 0 = off. */
  readonly sharpen: number;
  /** `#rrggbb`, or undefined for the proxy's default. */
  readonly background: string | undefined;
  readonly format: ViewerFormat | "preset";
  readonly quality: "default" | number;
}

export const DEFAULT_SETTINGS: PlaygroundSettings = {
  preset: "",
  width: "fit",
  aspect: "original",
  fit: "cover",
  gravity: "center",
  focalPoint: undefined,
  crop: undefined,
  rotation: 0,
  flip: "none",
  blur: 0,
  sharpen: 0,
  background: undefined,
  format: "auto",
  quality: "default",
};

/** Picking a preset hands width and format to it; clearing it takes them back. */
export function choosePreset(settings: PlaygroundSettings, preset: string): PlaygroundSettings {
  const isPreset = preset !== "";
  return {
    ...settings,
    preset,
    width: isPreset ? "preset" : settings.width === "preset" ? "fit" : settings.width,
    format: isPreset ? "preset" : settings.format === "preset" ? "auto" : settings.format,
  };
}

/** Which part of the original the output shows before any box: the crop, turned a quarter when rotation says. */
function sourceSize(
  image: { readonly width: number; readonly height: number },
  settings: PlaygroundSettings,
): { width: number; height: number } {
  const { width, height } = settings.crop ?? image;
  return settings.rotation === 90 || settings.rotation === 270 ? { width: height, height: width } : { width, height };
}

/** The options the settings stand for (null: the original's bytes, no options at all). */
export function playgroundOptions(
  image: { readonly width: number; readonly height: number },
  settings: PlaygroundSettings,
  stage: { readonly width: number; readonly height: number },
  dpr: number,
): ImageOptions | null {
  if (settings.format === "original") return null;
  const roundedDpr = Math.min(4, Math.max(1, dpr));
  const source = sourceSize(image, settings);
  const ratio = ASPECTS[settings.aspect] || source.width / source.height;
  // The largest box of that shape inside the source: asking for more would only make the proxy upscale or clamp.
  const box = {
    width: Math.min(source.width, source.height * ratio),
    height: Math.min(source.height, source.width / ratio),
  };
  const w =
    settings.width === "preset"
      ? undefined
      : settings.width === "fit"
        ? fitWidth(box, stage, roundedDpr)
        : Math.max(1, Math.min(settings.width, Math.floor(box.width / roundedDpr)));
  const hasBox = settings.aspect !== "original" && w !== undefined;
  const isCover = hasBox && settings.fit === "cover";
  return {
    w,
    h: hasBox ? Math.max(1, Math.round(w / ratio)) : undefined,
    dpr: w === undefined ? undefined : roundedDpr,
    fit: hasBox ? settings.fit : undefined,
    q: settings.quality === "default" ? undefined : settings.quality,
    f: settings.format === "preset" ? undefined : settings.format,
    gravity:
      isCover && settings.focalPoint === undefined && settings.gravity !== "center" ? settings.gravity : undefined,
    fp: isCover ? settings.focalPoint : undefined,
    crop: settings.crop,
    rot: settings.rotation,
    flip: settings.flip === "none" ? undefined : settings.flip,
    bg: settings.background,
    blur: settings.blur > 0 ? settings.blur : undefined,
    sharpen: settings.sharpen > 0 ? settings.sharpen : undefined,
    p: settings.preset === "" ? undefined : settings.preset,
  };
}

/** The proxy URL the viewer fetches for these settings. */
export function playgroundUrl(
  image: { readonly path: string; readonly width: number; readonly height: number },
  settings: PlaygroundSettings,
  stage: { readonly width: number; readonly height: number },
  dpr: number,
): string {
  return imageUrl(image.path, playgroundOptions(image, settings, stage, dpr) ?? {});
}

/** A pointer position on an element showing the whole original → a point as fractions, clamped, 4 decimals. */
export function pointToFraction(
  point: { readonly x: number; readonly y: number },
  rect: { readonly left: number; readonly top: number; readonly width: number; readonly height: number },
): FocalPoint {
  const fraction = (offset: number, size: number) =>
    size > 0 ? Math.round(Math.min(1, Math.max(0, offset / size)) * 10_000) / 10_000 : 0.5;
  return { x: fraction(point.x - rect.left, rect.width), y: fraction(point.y - rect.top, rect.height) };
}

/**
 * Two corners of a drag, as fractions of the original, → the region in its pixels: whole pixels covering the drawn
 * rectangle, inside the picture, at least 1x1.
 */
export function fractionsToRegion(
  from: FocalPoint,
  to: FocalPoint,
  image: { readonly width: number; readonly height: number },
): Region {
  const left = Math.min(image.width - 1, Math.floor(Math.min(from.x, to.x) * image.width));
  const top = Math.min(image.height - 1, Math.floor(Math.min(from.y, to.y) * image.height));
  const right = Math.max(left + 1, Math.ceil(Math.max(from.x, to.x) * image.width));
  const bottom = Math.max(top + 1, Math.ceil(Math.max(from.y, to.y) * image.height));
  return { left, top, width: Math.min(image.width, right) - left, height: Math.min(image.height, bottom) - top };
}
