import { ProxyError } from "../errors.ts";
import { remember } from "./remember.ts";

export type Fit = "cover" | "contain" | "fill" | "inside" | "outside";
export type RequestedFormat = "auto" | "avif" | "webp" | "jpeg" | "png";

/** What the URL asked for, parsed and range-checked once; nothing downstream re-validates it. */
export interface TransformOptions {
  /** CSS pixels; multiplied by dpr (and clamped) in resolveTargetSize. */
  readonly width?: number;
  readonly height?: number;
  readonly dpr: number;
  readonly fit?: Fit;
  readonly quality?: number;
  readonly format?: RequestedFormat;
  /** Allow output larger than the original (default false: a 300 px original asked for w=800 stays 300 px). */
  readonly enlarge: boolean;
}

export interface OptionLimits {
  readonly maxOutputDimension: number;
}

export const FITS: readonly Fit[] = ["cover", "contain", "fill", "inside", "outside"];
export const REQUESTED_FORMATS: readonly RequestedFormat[] = ["auto", "avif", "webp", "jpeg", "png"];
/** 4 covers every shipping screen (phones top out at 3.5); more only multiplies bytes nobody can see. */
export const MAX_DPR = 4;

type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly expected: string };
type Parse<T> = (raw: string, limits: OptionLimits) => Parsed<T>;
type Draft = { -readonly [K in keyof TransformOptions]?: Exclude<TransformOptions[K], undefined> };

interface OptionSpec {
  /** Parses raw into the draft; returns what was expected when raw is invalid. */
  read(raw: string, limits: OptionLimits, draft: Draft): string | undefined;
}

function option<K extends keyof Draft>(name: K, parse: Parse<NonNullable<Draft[K]>>): OptionSpec {
  return {
    read(raw, limits, draft) {
      const parsed = parse(raw, limits);
      if (!parsed.ok) return parsed.expected;
      draft[name] = parsed.value;
      return undefined;
    },
  };
}

/** Plain decimal digits only: "1e3", "+5", "0x10", "5.0" and " 5" are refused rather than guessed at. */
function int(min: number, max: (limits: OptionLimits) => number): Parse<number> {
  return (raw, limits) => {
    const upper = max(limits);
    const value = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
    return value >= min && value <= upper ? { ok: true, value } : { ok: false, expected: `an integer ${min}-${upper}` };
  };
}

/** Up to 3 decimals ("2", "1.5", "2.625"): enough for every real device pixel ratio. */
function decimal(min: number, max: number): Parse<number> {
  return (raw) => {
    const value = /^\d{1,2}(\.\d{1,3})?$/.test(raw) ? Number(raw) : NaN;
    return value >= min && value <= max ? { ok: true, value } : { ok: false, expected: `a number ${min}-${max}` };
  };
}

function oneOf<T extends string>(values: readonly T[]): Parse<T> {
  return (raw) => {
    const value = values.find((candidate) => candidate === raw);
    return value === undefined ? { ok: false, expected: `one of ${values.join(", ")}` } : { ok: true, value };
  };
}

function flag(): Parse<boolean> {
  return (raw) => {
    if (raw === "1" || raw === "true") return { ok: true, value: true };
    if (raw === "0" || raw === "false") return { ok: true, value: false };
    return { ok: false, expected: "1, 0, true or false" };
  };
}

/** URL key → option. The only place the query vocabulary is defined. */
const OPTIONS: Readonly<Record<string, OptionSpec>> = {
  w: option(
    "width",
    int(1, (limits) => limits.maxOutputDimension),
  ),
  h: option(
    "height",
    int(1, (limits) => limits.maxOutputDimension),
  ),
  dpr: option("dpr", decimal(1, MAX_DPR)),
  fit: option("fit", oneOf(FITS)),
  q: option(
    "quality",
    int(1, () => 100),
  ),
  f: option("format", oneOf(REQUESTED_FORMATS)),
  enlarge: option("enlarge", flag()),
};

export const OPTION_KEYS: readonly string[] = Object.keys(OPTIONS);

/** Echoes at most 32 characters of user input into error messages. */
function quote(raw: string): string {
  return JSON.stringify(raw.length > 32 ? `${raw.slice(0, 32)}…` : raw);
}

/**
 * null when the query has no transform options (=> the original bytes are served). Throws
 * ProxyError("INVALID_OPTIONS", message naming the option) for unknown keys, repeated keys, malformed or out-of-range
 * values. `ignoredKeys` are keys handled elsewhere (e.g. "s", "exp" for signed URLs) and are skipped.
 */
export function parseTransformOptions(
  params: URLSearchParams,
  limits: OptionLimits,
  ignoredKeys?: ReadonlySet<string>,
): TransformOptions | null {
  const draft: Draft = {};
  const seen = new Set<string>();
  for (const [key, raw] of params) {
    if (ignoredKeys?.has(key) === true) continue;
    const spec = Object.hasOwn(OPTIONS, key) ? OPTIONS[key] : undefined;
    if (spec === undefined) {
      throw new ProxyError("INVALID_OPTIONS", `Unknown option ${quote(key)}; known options: ${OPTION_KEYS.join(", ")}`);
    }
    if (seen.has(key)) throw new ProxyError("INVALID_OPTIONS", `Option ${key} is given more than once`);
    seen.add(key);
    const expected = spec.read(raw, limits, draft);
    if (expected !== undefined) {
      const got = raw === "" ? "an empty value" : quote(raw);
      throw new ProxyError("INVALID_OPTIONS", `Invalid option ${key}: expected ${expected}, got ${got}`);
    }
  }
  if (seen.size === 0) return null;
  return Object.freeze({ ...draft, dpr: draft.dpr ?? 1, enlarge: draft.enlarge ?? false });
}

/** Distinct query strings a TransformOptionsParser remembers: a site uses a few dozen size and format combinations. */
export const MAX_REMEMBERED_QUERIES = 1024;
/** Longer query strings are parsed every time: a valid one is short, and the memory stays under ~256 KB of keys. */
export const MAX_REMEMBERED_QUERY_LENGTH = 256;

/**
 * parseTransformOptions for a raw query string, remembering valid option sets by their exact query string. A variant
 * hit spent ~13 µs of its CPU (under tsx, on the 2-core bench machine) building URLSearchParams and walking the
 * option table; a remembered query costs one Map lookup and returns the same frozen object, which also lets
 * VariantKeys remember the cache key. An invalid query throws every time and is never remembered; the bound is
 * remember()'s.
 */
export class TransformOptionsParser {
  readonly #limits: OptionLimits;
  readonly #byQuery = new Map<string, TransformOptions>();

  constructor(limits: OptionLimits) {
    this.#limits = { maxOutputDimension: limits.maxOutputDimension };
  }

  /** `query` without the leading "?"; null when it holds no transform options. */
  parse(query: string): TransformOptions | null {
    const remembered = this.#byQuery.get(query);
    if (remembered !== undefined) return remembered;
    const options = parseTransformOptions(new URLSearchParams(query), this.#limits);
    if (options !== null) remember(this.#byQuery, query, options, MAX_REMEMBERED_QUERIES, MAX_REMEMBERED_QUERY_LENGTH);
    return options;
  }

  /** Query strings remembered now (for tests). */
  get size(): number {
    return this.#byQuery.size;
  }
}
