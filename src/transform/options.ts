import type { ImageOptionsConfig } from "../config/config.ts";
import { ConfigError } from "../config/settings.ts";
import { ProxyError } from "../errors.ts";
import { FITS, FLIPS, FORMATS, GRAVITIES } from "../../url/index.js";
import type { Fit, Flip, Format, Gravity } from "../../url/index.js";
import type { Rotation } from "./orientation.ts";
import { remember } from "./remember.ts";
import { resolveTargetSize } from "./target-size.ts";

// The values of fit, f, gravity and flip are imagika/url's (url/index.js, typed by url/index.d.ts): the URL builder
// and this parser share one list of each.
export { FITS, GRAVITIES, FORMATS as REQUESTED_FORMATS };
export type { Fit, Gravity, Format as RequestedFormat };

/** A point as fractions (0-1) of the width and height of the original after EXIF orientation. */
export interface FocalPoint {
  readonly x: number;
  readonly y: number;
}

/** A rectangle in pixels. */
export interface Region {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

/** What the URL asked for, parsed and range-checked once; nothing downstream re-validates it. */
export interface TransformOptions {
  /** CSS pixels; multiplied by dpr (and clamped) in resolveTargetSize. */
  readonly width?: number;
  readonly height?: number;
  readonly dpr: number;
  readonly fit?: Fit;
  readonly quality?: number;
  readonly format?: Format;
  /** Allow output larger than the original (default false: a 300 px original asked for w=800 stays 300 px). */
  readonly enlarge: boolean;
  /** Cover crops only; never together with focalPoint. */
  readonly gravity?: Gravity;
  /** Cover crops only: the crop window is centred on it as far as the picture allows. */
  readonly focalPoint?: FocalPoint;
  /** Cut from the original (after EXIF orientation) before anything else; checked against its size once read. */
  readonly crop?: Region;
  readonly rotation?: Rotation;
  readonly flip?: Flip;
  /** `rrggbb` or `rrggbbaa` (lower case, alpha only when not ff): fit=contain padding and JPEG's flattening. */
  readonly background?: string;
  /** Gaussian blur sigma in output pixels. */
  readonly blur?: number;
  /** Sharpen sigma in output pixels. */
  readonly sharpen?: number;
  /** w=auto / dpr=auto: the request's client hints decide (client-hints.ts resolves them before any other use). */
  readonly isWidthAuto?: boolean;
  readonly isDprAuto?: boolean;
}

/** A parsed image query: the transform, if any, and how the response presents itself. */
export interface ImageQuery {
  /** null: no transform, the original's bytes are served. */
  readonly options: TransformOptions | null;
  /** dl=1: `Content-Disposition: attachment`. Not part of the cache key: the bytes are the same. */
  readonly isDownload: boolean;
}

export interface OptionLimits {
  readonly maxOutputDimension: number;
}

/** The query vocabulary a proxy accepts, from its configuration (see createOptionRules). */
export interface OptionRules extends OptionLimits {
  /** Non-empty: the output width (w x dpr) must be one of these; w=auto snaps up to one. */
  readonly allowedWidths?: readonly number[];
  /** Non-empty: q must be one of these. */
  readonly allowedQualities?: readonly number[];
  /** w=auto and dpr=auto are accepted (--client-hints). */
  readonly hasClientHints?: boolean;
  /** Only p=<preset> is accepted. */
  readonly isPresetsOnly?: boolean;
  readonly presets?: ReadonlyMap<string, Preset>;
}

/** A named set of options (--presets), parsed once at start-up. */
export interface Preset {
  readonly name: string;
  /** The options as written in the file (what GET /api/presets lists). */
  readonly query: string;
  readonly draft: Readonly<Draft>;
}

/** 4 covers every shipping screen (phones top out at 3.5); more only multiplies bytes nobody can see. */
export const MAX_DPR = 4;
/** crop's coordinates: sharp's own limit is 10⁸, but no original past --max-source-pixels is decoded anyway. */
export const MAX_CROP_COORDINATE = 100_000;
export const BLUR_RANGE = { min: 0.3, max: 100 } as const;
export const SHARPEN_RANGE = { min: 0.5, max: 10 } as const;
/** Preset names: short, URL-safe and case-sensitive. */
export const PRESET_NAME = /^[\w-]{1,64}$/;

type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly expected: string };
type Parse<T> = (raw: string, rules: OptionRules) => Parsed<T>;
type Draft = {
  -readonly [K in keyof TransformOptions]?: Exclude<TransformOptions[K], undefined>;
} & { isDownload?: boolean };

interface OptionSpec {
  /** Parses raw into the draft; returns what was expected when raw is invalid. */
  read(raw: string, rules: OptionRules, draft: Draft): string | undefined;
}

/** Sets `name`, and clears `clears`: options that take the same role (w and w=auto, fp and gravity). */
function option<K extends keyof Draft>(
  name: K,
  parse: Parse<NonNullable<Draft[K]>>,
  clears: readonly (keyof Draft)[] = [],
): OptionSpec {
  return {
    read(raw, rules, draft) {
      const parsed = parse(raw, rules);
      if (!parsed.ok) return parsed.expected;
      for (const key of clears) delete draft[key];
      draft[name] = parsed.value;
      return undefined;
    },
  };
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(expected: string): Parsed<T> => ({ ok: false, expected });

/** Plain decimal digits only: "1e3", "+5", "0x10", "5.0" and " 5" are refused rather than guessed at. */
function int(min: number, max: (rules: OptionRules) => number): Parse<number> {
  return (raw, rules) => {
    const upper = max(rules);
    const value = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
    return value >= min && value <= upper ? ok(value) : fail(`an integer ${min}-${upper}`);
  };
}

/** Up to 3 integer digits and 3 decimals ("2", "1.5", "2.625", "100"): enough for dpr, blur and sharpen. */
function decimal(min: number, max: number): Parse<number> {
  return (raw) => {
    const value = /^\d{1,3}(\.\d{1,3})?$/.test(raw) ? Number(raw) : NaN;
    return value >= min && value <= max ? ok(value) : fail(`a number ${min}-${max}`);
  };
}

function oneOf<T extends string>(values: readonly T[]): Parse<T> {
  return (raw) => {
    const value = values.find((candidate) => candidate === raw);
    return value === undefined ? fail(`one of ${values.join(", ")}`) : ok(value);
  };
}

function flag(): Parse<boolean> {
  return (raw) => {
    if (raw === "1" || raw === "true") return ok(true);
    if (raw === "0" || raw === "false") return ok(false);
    return fail("1, 0, true or false");
  };
}

/** "auto" when the proxy reads client hints; the message says how to turn them on otherwise. */
function autoFlag(key: string): Parse<true> {
  return (_raw, rules) =>
    rules.hasClientHints === true
      ? ok(true)
      : fail(`a number (${key}=auto needs the proxy started with --client-hints)`);
}

/** `auto` goes to `autoKey`, anything else to `name`; each clears the other (a query's w=400 overrides a preset's w=auto). */
function orAuto<K extends "width" | "dpr">(
  name: K,
  autoKey: "isWidthAuto" | "isDprAuto",
  parse: Parse<number>,
  key: string,
): OptionSpec {
  const manual = option(name, parse, [autoKey]);
  const automatic = option(autoKey, autoFlag(key), [name]);
  return {
    read(raw, rules, draft) {
      if (raw !== "auto") {
        const expected = manual.read(raw, rules, draft);
        return expected === undefined ? undefined : `${expected}${rules.hasClientHints === true ? " or auto" : ""}`;
      }
      return automatic.read(raw, rules, draft);
    },
  };
}

const FRACTION = /^(?:0(?:\.\d{1,4})?|1(?:\.0{1,4})?)$/;

function focalPoint(): Parse<FocalPoint> {
  return (raw) => {
    const [x = "", y = "", ...rest] = raw.split(",");
    return rest.length === 0 && FRACTION.test(x) && FRACTION.test(y)
      ? ok(Object.freeze({ x: Number(x), y: Number(y) }))
      : fail("<x>,<y>, each a fraction 0-1 with up to 4 decimals");
  };
}

function region(): Parse<Region> {
  return (raw) => {
    const parts = raw.split(",");
    const numbers = parts.map((part) => (/^\d{1,6}$/.test(part) ? Number(part) : NaN));
    const [left = NaN, top = NaN, width = NaN, height = NaN] = numbers;
    const isValid =
      parts.length === 4 &&
      left <= MAX_CROP_COORDINATE &&
      top <= MAX_CROP_COORDINATE &&
      width >= 1 &&
      width <= MAX_CROP_COORDINATE &&
      height >= 1 &&
      height <= MAX_CROP_COORDINATE;
    return isValid
      ? ok(Object.freeze({ left, top, width, height }))
      : fail(
          `<left>,<top>,<width>,<height> in source pixels (integers 0-${MAX_CROP_COORDINATE}, width and height ≥ 1)`,
        );
  };
}

/** 3, 4, 6 or 8 hex digits → `rrggbb` or `rrggbbaa` in lower case; an opaque alpha is dropped so `fff` = `ffffffff`. */
function colour(): Parse<string> {
  return (raw) => {
    if (!/^(?:[\da-f]{3,4}|[\da-f]{6}|[\da-f]{8})$/i.test(raw))
      return fail("3, 4, 6 or 8 hex digits (rgb, rgba, rrggbb, rrggbbaa)");
    const hex = (raw.length <= 4 ? [...raw].map((digit) => digit + digit).join("") : raw).toLowerCase();
    return ok(hex.length === 8 && hex.endsWith("ff") ? hex.slice(0, 6) : hex);
  };
}

function rotation(): Parse<Rotation> {
  return (raw) =>
    raw === "90" || raw === "180" || raw === "270" ? ok(Number(raw) as Rotation) : fail("90, 180 or 270");
}

function download(): Parse<true> {
  return (raw) => (raw === "1" ? ok(true) : fail("1"));
}

/** Names listed in an error message: at most 20, so a large preset file cannot make a huge response. */
function listNames(names: Iterable<string>): string {
  const all = [...names];
  return all.length > 20 ? `${all.slice(0, 20).join(", ")}, … (${all.length} in all)` : all.join(", ");
}

function preset(): OptionSpec {
  return {
    read(raw, rules, draft) {
      const found = rules.presets?.get(raw);
      if (found === undefined) {
        const names = rules.presets === undefined ? [] : [...rules.presets.keys()];
        return names.length === 0 ? "a preset name (this proxy has no presets)" : `one of ${listNames(names)}`;
      }
      // The preset is the base; options given beside it override its own, whatever their order in the query.
      const given = { ...draft };
      for (const key of Object.keys(draft) as (keyof Draft)[]) delete draft[key];
      Object.assign(draft, found.draft);
      if (given.focalPoint !== undefined) delete draft.gravity;
      if (given.gravity !== undefined) delete draft.focalPoint;
      if (given.width !== undefined) delete draft.isWidthAuto;
      if (given.isWidthAuto !== undefined) delete draft.width;
      if (given.dpr !== undefined) delete draft.isDprAuto;
      if (given.isDprAuto !== undefined) delete draft.dpr;
      Object.assign(draft, given);
      return undefined;
    },
  };
}

/** URL key → option. The only place the query vocabulary is defined. */
const OPTIONS: Readonly<Record<string, OptionSpec>> = {
  w: orAuto(
    "width",
    "isWidthAuto",
    int(1, (rules) => rules.maxOutputDimension),
    "w",
  ),
  h: option(
    "height",
    int(1, (rules) => rules.maxOutputDimension),
  ),
  dpr: orAuto("dpr", "isDprAuto", decimal(1, MAX_DPR), "dpr"),
  fit: option("fit", oneOf(FITS)),
  q: option(
    "quality",
    int(1, () => 100),
  ),
  f: option("format", oneOf(FORMATS)),
  enlarge: option("enlarge", flag()),
  gravity: option("gravity", oneOf(GRAVITIES), ["focalPoint"]),
  fp: option("focalPoint", focalPoint(), ["gravity"]),
  crop: option("crop", region()),
  rot: option("rotation", rotation()),
  flip: option("flip", oneOf(FLIPS)),
  bg: option("background", colour()),
  blur: option("blur", decimal(BLUR_RANGE.min, BLUR_RANGE.max)),
  sharpen: option("sharpen", decimal(SHARPEN_RANGE.min, SHARPEN_RANGE.max)),
  p: preset(),
  dl: option("isDownload", download()),
};

export const OPTION_KEYS: readonly string[] = Object.keys(OPTIONS);

/** Echoes at most 32 characters of user input into error messages. */
function quote(raw: string): string {
  return JSON.stringify(raw.length > 32 ? `${raw.slice(0, 32)}…` : raw);
}

function invalid(message: string): ProxyError {
  return new ProxyError("INVALID_OPTIONS", message);
}

/**
 * Reads every key of `params` into a draft. Throws INVALID_OPTIONS naming the option for unknown, repeated,
 * malformed or out-of-range values, for fp together with gravity, and for anything but p under presets-only.
 */
function readDraft(params: URLSearchParams, rules: OptionRules, ignoredKeys?: ReadonlySet<string>): Draft {
  const draft: Draft = {};
  const seen = new Set<string>();
  for (const [key, raw] of params) {
    if (ignoredKeys?.has(key) === true) continue;
    const spec = Object.hasOwn(OPTIONS, key) ? OPTIONS[key] : undefined;
    if (spec === undefined) {
      throw invalid(`Unknown option ${quote(key)}; known options: ${OPTION_KEYS.join(", ")}`);
    }
    if (rules.isPresetsOnly === true && key !== "p") {
      const names = rules.presets === undefined ? "" : `: ${listNames(rules.presets.keys())}`;
      throw invalid(`Option ${key} is not accepted: this proxy serves presets only (p=<name>${names})`);
    }
    if (seen.has(key)) throw invalid(`Option ${key} is given more than once`);
    seen.add(key);
    const expected = spec.read(raw, rules, draft);
    if (expected !== undefined) {
      const got = raw === "" ? "an empty value" : quote(raw);
      throw invalid(`Invalid option ${key}: expected ${expected}, got ${got}`);
    }
  }
  if (seen.has("fp") && seen.has("gravity")) {
    throw invalid("Invalid option fp: a focal point replaces gravity; give one of fp and gravity");
  }
  return draft;
}

/** The limits that need the whole set of options: allowed widths (w x dpr, as clamped) and allowed qualities. */
function checkAllowed(draft: Draft, rules: OptionRules): void {
  const widths = rules.allowedWidths ?? [];
  if (widths.length > 0 && draft.width !== undefined && draft.isDprAuto !== true) {
    const size = {
      width: draft.width,
      dpr: draft.dpr ?? 1,
      ...(draft.height === undefined ? {} : { height: draft.height }),
    };
    const width = resolveTargetSize(size, rules).width;
    if (width !== undefined && !widths.includes(width)) {
      const asked = draft.dpr !== undefined && draft.dpr !== 1 ? `w x dpr = ${width} px` : `${width} px`;
      throw invalid(`Invalid option w: ${asked} is not an allowed width; allowed widths: ${widths.join(", ")}`);
    }
  }
  const qualities = rules.allowedQualities ?? [];
  if (qualities.length > 0 && draft.quality !== undefined && !qualities.includes(draft.quality)) {
    throw invalid(
      `Invalid option q: ${draft.quality} is not an allowed quality; allowed qualities: ${qualities.join(", ")}`,
    );
  }
}

/**
 * The query's options (s and exp, or url, are passed as `ignoredKeys`). `options` is null when the query has no
 * transform (=> the original bytes are served, with Content-Disposition as dl says). Throws INVALID_OPTIONS naming the
 * option; see readDraft and checkAllowed.
 */
export function parseImageQuery(
  params: URLSearchParams,
  rules: OptionRules,
  ignoredKeys?: ReadonlySet<string>,
): ImageQuery {
  const draft = readDraft(params, rules, ignoredKeys);
  checkAllowed(draft, rules);
  const { isDownload = false, ...transform } = draft;
  const options =
    Object.keys(transform).length === 0
      ? null
      : Object.freeze({ ...transform, dpr: transform.dpr ?? 1, enlarge: transform.enlarge ?? false });
  return Object.freeze({ options, isDownload });
}

/** parseImageQuery's transform alone (null when the query has none). */
export function parseTransformOptions(
  params: URLSearchParams,
  rules: OptionRules,
  ignoredKeys?: ReadonlySet<string>,
): TransformOptions | null {
  return parseImageQuery(params, rules, ignoredKeys).options;
}

/**
 * The proxy's OptionRules, with every preset parsed by the same table and limits as a request (a preset may not name
 * another). Throws ConfigError naming each bad preset and its bad option, so a typo stops the start, not a request.
 */
export function createOptionRules(settings: ImageOptionsConfig, limits: OptionLimits): OptionRules {
  const base: OptionRules = {
    maxOutputDimension: limits.maxOutputDimension,
    allowedWidths: settings.allowedWidths,
    allowedQualities: settings.allowedQualities,
    hasClientHints: settings.hasClientHints,
  };
  const presets = new Map<string, Preset>();
  const problems: string[] = [];
  for (const [name, query] of Object.entries(settings.presets)) {
    if (!PRESET_NAME.test(name)) {
      problems.push(`--presets: preset ${quote(name)}: names are 1-64 letters, digits, _ or -`);
      continue;
    }
    try {
      const params = new URLSearchParams(query);
      if (params.has("p")) throw invalid("a preset may not name another preset (p)");
      const draft = readDraft(params, base);
      checkAllowed(draft, base);
      if (Object.keys(draft).length === 0) throw invalid("it sets no option");
      presets.set(name, Object.freeze({ name, query, draft: Object.freeze(draft) }));
    } catch (error) {
      problems.push(
        `--presets: preset ${quote(name)} (${quote(query)}): ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({ ...base, presets, isPresetsOnly: settings.isPresetsOnly });
}

/** Distinct query strings a TransformOptionsParser remembers: a site uses a few dozen size and format combinations. */
export const MAX_REMEMBERED_QUERIES = 1024;
/** Longer query strings are parsed every time: a valid one is short, and the memory stays under ~256 KB of keys. */
export const MAX_REMEMBERED_QUERY_LENGTH = 256;

/**
 * parseImageQuery for a raw query string, remembering valid queries by their exact string. A variant hit spent ~13 µs
 * of its CPU (under tsx, on the 2-core bench machine) building URLSearchParams and walking the option table; a
 * remembered query costs one Map lookup and returns the same frozen object, which also lets VariantKeys remember the
 * cache key. An invalid query throws every time and is never remembered; the bound is remember()'s.
 */
export class TransformOptionsParser {
  readonly #rules: OptionRules;
  readonly #byQuery = new Map<string, ImageQuery>();

  constructor(rules: OptionRules) {
    this.#rules = rules;
  }

  /** `query` without the leading "?". */
  parse(query: string): ImageQuery {
    const remembered = this.#byQuery.get(query);
    if (remembered !== undefined) return remembered;
    const parsed = parseImageQuery(new URLSearchParams(query), this.#rules);
    remember(this.#byQuery, query, parsed, MAX_REMEMBERED_QUERIES, MAX_REMEMBERED_QUERY_LENGTH);
    return parsed;
  }

  /** Query strings remembered now (for tests). */
  get size(): number {
    return this.#byQuery.size;
  }
}
