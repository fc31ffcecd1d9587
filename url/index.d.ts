/**
 * imagika/url: URLs for an Imagika proxy, for servers, bundlers and browsers alike.
 *
 *   import { imageUrl, srcSet, signImageUrl } from "imagika/url";
 *   imageUrl("albums/a b.jpg", { w: 800, f: "auto" })          // "/img/albums/a%20b.jpg?w=800&f=auto"
 *   srcSet("a.jpg", [320, 640], { f: "auto" })                // "/img/a.jpg?w=320&f=auto 320w, /img/a.jpg?w=640&f=auto 640w"
 *   await signImageUrl(imageUrl("a.jpg", { w: 800 }), key)    // "/img/a.jpg?w=800&s=…" (on a server: the key signs anything)
 *
 * Values are checked as far as they do not depend on the proxy's settings: a value the proxy would always refuse
 * throws a RangeError naming the option; limits it is configured with (--max-output-dimension, --allowed-widths,
 * presets) are its to answer with a 400.
 */

export type Fit = "cover" | "contain" | "fill" | "inside" | "outside";
export type Format = "auto" | "avif" | "webp" | "jpeg" | "png" | "thumbhash";
/** Which part a cover crop keeps: a side or corner, or libvips' smart crops (attention: skin, saturation, edges). */
export type Gravity =
  | "center"
  | "top"
  | "bottom"
  | "left"
  | "right"
  | "top-left"
  | "top-right"
  | "bottom-left"
  | "bottom-right"
  | "attention"
  | "entropy";
/** Mirror left-right (h), top-bottom (v) or both (hv), applied after the turn (rot). */
export type Flip = "h" | "v" | "hv";

/** A point as fractions (0-1) of the original's width and height, after EXIF orientation. */
export interface FocalPoint {
  readonly x: number;
  readonly y: number;
}

/** A region in the original's pixels, after EXIF orientation. */
export interface Region {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

/** The proxy's options (README, API). `undefined`, `null`, `false`, `rot: 0` and `dpr: 1` leave an option out. */
export interface ImageOptions {
  /** Width in CSS pixels (rounded); `auto` from client hints (proxy started with --client-hints). */
  readonly w?: number | "auto" | null | undefined;
  /** Height in CSS pixels (rounded). */
  readonly h?: number | null | undefined;
  /** 1-4, 3 decimals kept; multiplies w and h. */
  readonly dpr?: number | "auto" | null | undefined;
  readonly fit?: Fit | null | undefined;
  /** Quality 1-100 (rounded). */
  readonly q?: number | null | undefined;
  readonly f?: Format | null | undefined;
  /** Allow output larger than the original. */
  readonly enlarge?: boolean | null | undefined;
  /** Which part a cover crop keeps; not with fp. */
  readonly gravity?: Gravity | null | undefined;
  /** Focal point of a cover crop (4 decimals kept); not with gravity. */
  readonly fp?: FocalPoint | null | undefined;
  /** Region cut from the original before anything else (rounded to pixels). */
  readonly crop?: Region | null | undefined;
  /** Clockwise turn after EXIF orientation. */
  readonly rot?: 0 | 90 | 180 | 270 | null | undefined;
  readonly flip?: Flip | null | undefined;
  /** Padding (fit=contain) and flattening colour: 3, 4, 6 or 8 hex digits, with or without "#". */
  readonly bg?: string | null | undefined;
  /** Gaussian blur sigma 0.3-100, in output pixels. */
  readonly blur?: number | null | undefined;
  /** Sharpen sigma 0.5-10, in output pixels. */
  readonly sharpen?: number | null | undefined;
  /** A preset of the proxy's --presets; options given beside it override the preset's. */
  readonly p?: string | null | undefined;
  /** `Content-Disposition: attachment`. */
  readonly dl?: boolean | null | undefined;
}

export interface UrlSettings {
  /** The proxy's origin, e.g. `https://img.example.com` (no path); without it the URL is relative (`/img/…`). */
  readonly base?: string | undefined;
}

export interface SignSettings {
  /** Adds `exp`: the proxy refuses the URL after this moment (a Date or unix seconds). */
  readonly expiresAt?: Date | number | undefined;
}

/** Query keys in the order the URL lists them: the proxy's option table. */
export declare const OPTION_KEYS: readonly (keyof ImageOptions)[];
// The values of fit, f, gravity and flip; the proxy's option parser (src/transform/options.ts) uses these lists.
export declare const FITS: readonly Fit[];
export declare const FORMATS: readonly Format[];
export declare const GRAVITIES: readonly Gravity[];
export declare const FLIPS: readonly Flip[];

/** Percent-encodes each segment of an origin path, keeping the `/` between them (a leading `/` is dropped). */
export declare function encodeImagePath(path: string): string;

/** The query string of `options` (no "?"), keys in OPTION_KEYS order; "" for none. */
export declare function imageQuery(options?: ImageOptions): string;

/**
 * `/img/<path>?<options>`, or `/img?url=<source>&<options>` when `source` is an absolute http(s) URL (remote mode,
 * --allowed-sources). No options: the original's bytes, unchanged.
 */
export declare function imageUrl(source: string, options?: ImageOptions, settings?: UrlSettings): string;

/**
 * A `srcset` value, one `<url> <width>w` candidate per width. With both `w` and `h` in `options`, every candidate keeps
 * their aspect ratio; `h` without `w`, `w: "auto"` and `dpr` throw.
 */
export declare function srcSet(
  source: string,
  widths: readonly number[],
  options?: ImageOptions,
  settings?: UrlSettings,
): string;

/**
 * Signs a URL from imageUrl (relative or absolute) as a proxy with `--signing-key <key>` verifies it: `s`, and `exp`
 * with `expiresAt`. Async (WebCrypto). Run it where the key is safe: a server, never a browser.
 */
export declare function signImageUrl(url: string, key: string, settings?: SignSettings): Promise<string>;

/** signImageUrl for every candidate of a srcSet value. */
export declare function signSrcSet(srcset: string, key: string, settings?: SignSettings): Promise<string>;
