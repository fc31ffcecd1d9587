import type { OptionLimits, TransformOptions } from "./options.ts";
import { orientationOf } from "./orientation.ts";
import { DEFAULT_QUALITY } from "./quality.ts";
import { remember } from "./remember.ts";
import { resolveTargetSize } from "./target-size.ts";

/**
 * "original" = encode in the original's own format (see resolveEncoding in pipeline.ts for gif, tiff, heif, svg);
 * "thumbhash" = a ThumbHash placeholder of the variant, as base64 text.
 */
export type OutputFormat = "avif" | "webp" | "jpeg" | "png" | "thumbhash" | "original";

/**
 * Bump when the pipeline starts producing different bytes for the same options (new step, new encoder settings),
 * so persistent caches (disk, Redis) stop serving variants made the old way.
 */
export const PIPELINE_VERSION = 1;

/**
 * f=auto: avif if Accept lists image/avif (q>0), else webp if it lists image/webp, else "original". No f => "original".
 * Explicit f => that. Only explicit listings count: browsers that cannot decode AVIF still send `image/*` and `*∕*`.
 * The caller must send `Vary: Accept` for f=auto responses.
 */
export function negotiateFormat(options: TransformOptions, accept: string | undefined): OutputFormat {
  if (options.format === undefined) return "original";
  if (options.format !== "auto") return options.format;
  return accept === undefined ? "original" : autoFormatFor(accept);
}

/** What f=auto gives for this Accept header: avif, webp, or the original's format. */
function autoFormatFor(accept: string): OutputFormat {
  const accepted = acceptedImageTypes(accept);
  if (accepted.has("image/avif")) return "avif";
  if (accepted.has("image/webp")) return "webp";
  return "original";
}

/**
 * Media types the Accept header lists with q>0 (RFC 9110 §12.5.1). A type also listed with q=0 is refused, since
 * q=0 is an explicit "not acceptable"; a malformed q makes that one range count as absent.
 */
function acceptedImageTypes(accept: string): Set<string> {
  const accepted = new Set<string>();
  const refused = new Set<string>();
  for (const range of accept.split(",")) {
    const [type = "", ...params] = range.split(";");
    const mediaType = type.trim().toLowerCase();
    if (!mediaType.startsWith("image/")) continue;
    let weight = 1;
    for (const param of params) {
      const [name = "", value = ""] = param.split("=");
      if (name.trim().toLowerCase() !== "q") continue;
      const text = value.trim();
      weight = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(text) ? Number(text) : NaN;
    }
    if (weight > 0) accepted.add(mediaType);
    else if (weight === 0) refused.add(mediaType);
  }
  for (const mediaType of refused) accepted.delete(mediaType);
  return accepted;
}

/**
 * Canonical, order-independent string for the cache key from the normalised options AFTER negotiation (and after
 * client hints are resolved), defaults applied: dpr folded into width/height and clamped, fit only when both sides
 * are set (default cover), enlarge only when there is a size, quality defaulted per format (PNG: "lossless" or a
 * palette quality). rot and flip become one of the 8 orientations; gravity (unless center) and fp only when a cover
 * crop happens; a ThumbHash has no quality, blur or sharpen (they do not change a 100 px placeholder). "auto" never
 * appears. Two requests that must produce identical bytes get the same string; different outputs never share one.
 * Example: "v1;f=webp;w=800;h=600;fit=cover;enlarge=0;rot=90;gravity=attention;q=80".
 */
export function variantKey(options: TransformOptions, format: OutputFormat, limits: OptionLimits): string {
  const { width, height } = resolveTargetSize(options, limits);
  const parts = [`v${PIPELINE_VERSION}`, `f=${format}`];
  if (width !== undefined) parts.push(`w=${width}`);
  if (height !== undefined) parts.push(`h=${height}`);
  const fit = options.fit ?? "cover";
  if (width !== undefined && height !== undefined) parts.push(`fit=${fit}`);
  if (width !== undefined || height !== undefined) parts.push(`enlarge=${options.enlarge ? 1 : 0}`);
  const { crop, focalPoint, gravity } = options;
  if (crop !== undefined) parts.push(`crop=${crop.left},${crop.top},${crop.width},${crop.height}`);
  const { turn, isMirrored } = orientationOf(options.rotation, options.flip);
  if (turn !== 0) parts.push(`rot=${turn}`);
  if (isMirrored) parts.push("flip=h");
  if (width !== undefined && height !== undefined && fit === "cover") {
    if (focalPoint !== undefined) parts.push(`fp=${focalPoint.x},${focalPoint.y}`);
    else if (gravity !== undefined && gravity !== "center") parts.push(`gravity=${gravity}`);
  }
  if (options.background !== undefined) parts.push(`bg=${options.background}`);
  if (format === "thumbhash") return parts.join(";");
  if (options.blur !== undefined) parts.push(`blur=${options.blur}`);
  if (options.sharpen !== undefined) parts.push(`sharpen=${options.sharpen}`);
  parts.push(`q=${keyQuality(options.quality, format)}`);
  return parts.join(";");
}

function keyQuality(quality: number | undefined, format: Exclude<OutputFormat, "thumbhash">): string {
  switch (format) {
    case "avif":
    case "webp":
    case "jpeg":
      return String(quality ?? DEFAULT_QUALITY[format]);
    case "png":
      return quality === undefined ? "lossless" : `palette${quality}`;
    case "original":
      // The original's format is not known here; the cache key also names the original, so "default" is exact.
      return quality === undefined ? "default" : String(quality);
  }
}

/** A request's output format after negotiation and its canonical options string (see variantKey). */
export interface NegotiatedVariant {
  readonly format: OutputFormat;
  readonly canonical: string;
}

/** Distinct Accept headers VariantKeys remembers: each browser version sends one fixed string. */
export const MAX_REMEMBERED_ACCEPTS = 256;
/** Longer Accept headers are negotiated every time (real ones are under 150 characters). */
export const MAX_REMEMBERED_ACCEPT_LENGTH = 512;

/**
 * negotiateFormat + variantKey on the request path, remembered: a cache hit would otherwise split the Accept header
 * and rebuild the canonical string every time (~9 µs of a variant hit's CPU under tsx on the 2-core bench machine).
 * Canonical strings hang off the options object (a WeakMap, so they go when it does: TransformOptionsParser hands
 * out the same object for the same query). Accept headers are bounded by remember().
 */
export class VariantKeys {
  readonly #limits: OptionLimits;
  readonly #byOptions = new WeakMap<TransformOptions, Partial<Record<OutputFormat, NegotiatedVariant>>>();
  readonly #autoByAccept = new Map<string, OutputFormat>();

  constructor(limits: OptionLimits) {
    this.#limits = { maxOutputDimension: limits.maxOutputDimension };
  }

  resolve(options: TransformOptions, accept: string | undefined): NegotiatedVariant {
    const format =
      options.format === "auto" && accept !== undefined ? this.#autoFormat(accept) : negotiateFormat(options, accept);
    let byFormat = this.#byOptions.get(options);
    if (byFormat === undefined) this.#byOptions.set(options, (byFormat = {}));
    return (byFormat[format] ??= Object.freeze({ format, canonical: variantKey(options, format, this.#limits) }));
  }

  #autoFormat(accept: string): OutputFormat {
    const remembered = this.#autoByAccept.get(accept);
    if (remembered !== undefined) return remembered;
    const format = autoFormatFor(accept);
    remember(this.#autoByAccept, accept, format, MAX_REMEMBERED_ACCEPTS, MAX_REMEMBERED_ACCEPT_LENGTH);
    return format;
  }
}
