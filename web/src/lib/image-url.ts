/** Output formats the proxy can encode; `auto` lets it negotiate from the request's `Accept` header. */
export type OutputFormat = "auto" | "avif" | "webp" | "jpeg" | "png";

/** Transform options in the proxy's URL vocabulary. `undefined` means "leave it to the proxy". */
export interface ImageUrlOptions {
  readonly w?: number | undefined;
  readonly h?: number | undefined;
  readonly q?: number | undefined;
  readonly f?: OutputFormat | undefined;
  readonly dpr?: number | undefined;
}

/**
 * Query keys in a fixed order: the proxy normalises options for its cache key anyway, but a stable order keeps the
 * browser's HTTP cache and the proxy's logs from seeing `?w=1&f=auto` and `?f=auto&w=1` as two things.
 */
const OPTION_ORDER = ["w", "h", "q", "f", "dpr"] as const satisfies readonly (keyof ImageUrlOptions)[];

/** Widths offered in gallery `srcset`s: from a 2-column phone grid (160 px) up to a full-HD viewport. */
export const SRCSET_WIDTHS = [160, 320, 480, 640, 960, 1280, 1920] as const;

/** Percent-encodes each segment of an origin path, keeping the `/` separators: `a b/c#1.jpg` → `a%20b/c%231.jpg`. */
export function encodeImagePath(path: string): string {
  return path
    .replace(/^\/+/, "")
    .split("/")
    .map((segment) => encodeURIComponent(segment))
    .join("/");
}

/** `/img/<encoded path>?w=..&h=..&q=..&f=..&dpr=..`; with no options it asks for the original bytes unchanged. */
export function imageUrl(path: string, options: ImageUrlOptions = {}): string {
  const params: string[] = [];
  for (const key of OPTION_ORDER) {
    const value = normaliseOption(key, options[key]);
    if (value !== undefined) params.push(`${key}=${value}`);
  }
  const base = `/img/${encodeImagePath(path)}`;
  return params.length > 0 ? `${base}?${params.join("&")}` : base;
}

function normaliseOption(key: (typeof OPTION_ORDER)[number], value: number | string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string") return value;
  if (!Number.isFinite(value) || value <= 0) return undefined;
  switch (key) {
    case "q":
      return String(Math.min(100, Math.max(1, Math.round(value))));
    case "dpr": {
      const dpr = Math.round(value * 100) / 100; // 1.3333… → 1.33: a handful of distinct variants, not one per float
      return dpr === 1 ? undefined : String(dpr);
    }
    default:
      return String(Math.max(1, Math.round(value)));
  }
}

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
  options: Omit<ImageUrlOptions, "w" | "h" | "dpr"> = {},
): string {
  return srcSetWidths(originalWidth)
    .map((w) => `${imageUrl(path, { ...options, w })} ${w}w`)
    .join(", ");
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
