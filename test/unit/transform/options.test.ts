import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isProxyError, ProxyError } from "../../../src/errors.ts";
import {
  FITS,
  MAX_DPR,
  MAX_REMEMBERED_QUERIES,
  MAX_REMEMBERED_QUERY_LENGTH,
  parseTransformOptions,
  REQUESTED_FORMATS,
  TransformOptionsParser,
} from "../../../src/transform/options.ts";
import type { TransformOptions } from "../../../src/transform/options.ts";

const LIMITS = { maxOutputDimension: 8192 };

function parse(query: string, ignored?: ReadonlySet<string>): TransformOptions | null {
  return parseTransformOptions(new URLSearchParams(query), LIMITS, ignored);
}

function parseError(query: string): ProxyError {
  try {
    parse(query);
  } catch (error) {
    if (error instanceof ProxyError) return error;
    throw error;
  }
  throw new Error(`expected ${query} to be refused`);
}

describe("parseTransformOptions", () => {
  it("returns null when the query has no transform options, so the original is served", () => {
    expect(parse("")).toBeNull();
    expect(parse("s=abc&exp=123", new Set(["s", "exp"]))).toBeNull();
  });

  it("parses every option and applies defaults for dpr and enlarge", () => {
    expect(parse("w=640&h=480&dpr=2&fit=contain&q=70&f=webp&enlarge=1")).toEqual({
      width: 640,
      height: 480,
      dpr: 2,
      fit: "contain",
      quality: 70,
      format: "webp",
      enlarge: true,
    });
    expect(parse("w=100")).toEqual({ width: 100, dpr: 1, enlarge: false });
  });

  it("skips ignored keys but still parses the rest", () => {
    expect(parse("s=sig&w=10", new Set(["s"]))).toEqual({ width: 10, dpr: 1, enlarge: false });
  });

  it.each([
    ["w", "1", 1],
    ["w", "8192", 8192],
    ["w", "0100", 100],
    ["h", "1", 1],
    ["h", "8192", 8192],
    ["q", "1", 1],
    ["q", "100", 100],
    ["dpr", "1", 1],
    ["dpr", "1.5", 1.5],
    ["dpr", "2.625", 2.625],
    ["dpr", String(MAX_DPR), MAX_DPR],
  ])("accepts %s=%s", (key, raw, value) => {
    const options = parse(`${key}=${raw}`);
    const field = { w: "width", h: "height", q: "quality", dpr: "dpr" }[key] as keyof TransformOptions;
    expect(options?.[field]).toBe(value);
  });

  it.each(FITS)("accepts fit=%s", (fit) => expect(parse(`fit=${fit}`)?.fit).toBe(fit));
  it.each(REQUESTED_FORMATS)("accepts f=%s", (format) => expect(parse(`f=${format}`)?.format).toBe(format));
  it.each([
    ["1", true],
    ["true", true],
    ["0", false],
    ["false", false],
  ])("accepts enlarge=%s", (raw, value) => expect(parse(`enlarge=${raw}`)?.enlarge).toBe(value));

  it.each([
    ["w", ""],
    ["w", "0"],
    ["w", "-5"],
    ["w", "8193"],
    ["w", "1e3"],
    ["w", "1E3"],
    ["w", "NaN"],
    ["w", "Infinity"],
    ["w", "12.5"],
    ["w", "0x10"],
    ["w", " 12"],
    ["w", "+12"],
    ["w", "12px"],
    ["w", "99999999999999999999999999"],
    ["h", ""],
    ["h", "0"],
    ["h", "-1"],
    ["h", "1e2"],
    ["h", "100000"],
    ["q", ""],
    ["q", "0"],
    ["q", "101"],
    ["q", "80.5"],
    ["q", "-80"],
    ["dpr", ""],
    ["dpr", "0"],
    ["dpr", "0.5"],
    ["dpr", "4.001"],
    ["dpr", "5"],
    ["dpr", "1e0"],
    ["dpr", "NaN"],
    ["dpr", "2."],
    ["dpr", ".5"],
    ["dpr", "-2"],
    ["fit", ""],
    ["fit", "COVER"],
    ["fit", "crop"],
    ["f", ""],
    ["f", "gif"],
    ["f", "jpg"],
    ["f", "WEBP"],
    ["enlarge", ""],
    ["enlarge", "yes"],
    ["enlarge", "2"],
  ])("refuses %s=%j with 400 naming the option", (key, raw) => {
    const error = parseError(`${key}=${encodeURIComponent(raw)}`);
    expect(error.code).toBe("INVALID_OPTIONS");
    expect(error.status).toBe(400);
    expect(error.message).toContain(`option ${key}:`);
  });

  it("says 'an empty value' for an empty value", () => {
    expect(parseError("w=").message).toMatch(/got an empty value/);
  });

  it("refuses repeated keys, even with equal values", () => {
    const error = parseError("w=100&h=50&w=100");
    expect(error.code).toBe("INVALID_OPTIONS");
    expect(error.message).toContain("w");
  });

  it("refuses unknown keys, naming them and listing the known ones", () => {
    const error = parseError("w=100&width=100");
    expect(error.code).toBe("INVALID_OPTIONS");
    expect(error.message).toContain('"width"');
    expect(error.message).toContain("w, h, dpr");
  });

  it("refuses keys that only exist on Object.prototype", () => {
    expect(parseError("constructor=1").code).toBe("INVALID_OPTIONS");
    expect(parseError("__proto__=1").code).toBe("INVALID_OPTIONS");
  });

  it("echoes at most 32 characters of a bad value", () => {
    const error = parseError(`w=${"9".repeat(5000)}`);
    expect(error.message.length).toBeLessThan(200);
  });

  it("for any query string returns a valid result or throws INVALID_OPTIONS, never anything else", () => {
    const key = fc.oneof(
      fc.constantFrom("w", "h", "dpr", "fit", "q", "f", "enlarge", "s"),
      fc.string({ maxLength: 6 }),
    );
    const value = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.integer().map(String),
      fc.double().map(String),
      fc.constantFrom("1e3", "NaN", "-0", "0", "2.5", "cover", "auto", "true", "", "%00", "\u0000"),
    );
    const query = fc.oneof(
      fc.array(fc.tuple(key, value), { maxLength: 8 }).map((pairs) => new URLSearchParams(pairs).toString()),
      fc.string({ maxLength: 60 }),
    );
    fc.assert(
      fc.property(query, (text) => {
        let options: TransformOptions | null;
        try {
          options = parseTransformOptions(new URLSearchParams(text), LIMITS, new Set(["s"]));
        } catch (error) {
          return isProxyError(error) && error.code === "INVALID_OPTIONS" && error.status === 400;
        }
        if (options === null) return true;
        const isDimension = (n: number | undefined) => n === undefined || (Number.isInteger(n) && n >= 1 && n <= 8192);
        return (
          isDimension(options.width) &&
          isDimension(options.height) &&
          options.dpr >= 1 &&
          options.dpr <= MAX_DPR &&
          (options.quality === undefined || (Number.isInteger(options.quality) && options.quality >= 1)) &&
          (options.fit === undefined || FITS.includes(options.fit)) &&
          (options.format === undefined || REQUESTED_FORMATS.includes(options.format)) &&
          typeof options.enlarge === "boolean"
        );
      }),
      { numRuns: 2000 },
    );
  });
});

describe("TransformOptionsParser", () => {
  it("returns what parseTransformOptions returns, and the same object for the same query", () => {
    const parser = new TransformOptionsParser(LIMITS);
    for (const query of ["w=640&h=480&dpr=2&fit=contain&q=70&f=webp&enlarge=1", "f=auto&w=800", "q=75&w=800", "&"]) {
      const first = parser.parse(query);
      expect(first).toEqual(parse(query));
      expect(parser.parse(query)).toBe(first);
    }
  });

  it("refuses an invalid query every time and never remembers it", () => {
    const parser = new TransformOptionsParser(LIMITS);
    for (let i = 0; i < 3; i++) {
      expect(() => parser.parse("w=0")).toThrow(/Invalid option w/);
      expect(() => parser.parse("w=10&w=20")).toThrow(/more than once/);
    }
    expect(parser.size).toBe(0);
  });

  it("remembers at most MAX_REMEMBERED_QUERIES queries, and none longer than MAX_REMEMBERED_QUERY_LENGTH", () => {
    const parser = new TransformOptionsParser(LIMITS);
    for (let w = 1; w <= MAX_REMEMBERED_QUERIES * 3; w++) {
      expect(parser.parse(`w=${w}`)).toEqual({ width: w, dpr: 1, enlarge: false });
      expect(parser.size).toBeLessThanOrEqual(MAX_REMEMBERED_QUERIES);
    }
    const sized = new TransformOptionsParser(LIMITS);
    const long = `w=800${"&".repeat(MAX_REMEMBERED_QUERY_LENGTH)}`;
    expect(sized.parse(long)).toEqual({ width: 800, dpr: 1, enlarge: false });
    expect(sized.size).toBe(0);
  });

  it("applies its own limits", () => {
    const parser = new TransformOptionsParser({ maxOutputDimension: 100 });
    expect(() => parser.parse("w=101")).toThrow(/an integer 1-100/);
    expect(parser.parse("w=100")).toEqual({ width: 100, dpr: 1, enlarge: false });
  });
});
