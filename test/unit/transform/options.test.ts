import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isProxyError, ProxyError } from "../../../src/errors.ts";
import { ConfigError } from "../../../src/config/settings.ts";
import {
  createOptionRules,
  FITS,
  GRAVITIES,
  MAX_DPR,
  MAX_REMEMBERED_QUERIES,
  MAX_REMEMBERED_QUERY_LENGTH,
  parseImageQuery,
  parseTransformOptions,
  REQUESTED_FORMATS,
  TransformOptionsParser,
} from "../../../src/transform/options.ts";
import type { OptionRules, TransformOptions } from "../../../src/transform/options.ts";

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
      fc.constantFrom("gravity", "fp", "crop", "rot", "flip", "bg", "blur", "sharpen", "dl", "p"),
      fc.string({ maxLength: 6 }),
    );
    const value = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.integer().map(String),
      fc.double().map(String),
      fc.constantFrom("1e3", "NaN", "-0", "0", "2.5", "cover", "auto", "true", "", "%00", "\u0000"),
      fc.constantFrom("attention", "0.5,0.5", "1,2,3,4", "0,0,10,10", "90", "hv", "fff", "12345678", "100", "1"),
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
          typeof options.enlarge === "boolean" &&
          (options.gravity === undefined || GRAVITIES.includes(options.gravity)) &&
          (options.focalPoint === undefined || (options.focalPoint.x <= 1 && options.focalPoint.y <= 1)) &&
          (options.crop === undefined || (options.crop.width >= 1 && options.crop.height >= 1)) &&
          (options.rotation === undefined || [90, 180, 270].includes(options.rotation)) &&
          (options.background === undefined || /^[\da-f]{6}(?:[\da-f]{2})?$/.test(options.background)) &&
          (options.blur === undefined || (options.blur >= 0.3 && options.blur <= 100)) &&
          (options.sharpen === undefined || (options.sharpen >= 0.5 && options.sharpen <= 10)) &&
          options.isWidthAuto === undefined &&
          options.isDprAuto === undefined
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
      expect(first.options).toEqual(parse(query));
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
      expect(parser.parse(`w=${w}`).options).toEqual({ width: w, dpr: 1, enlarge: false });
      expect(parser.size).toBeLessThanOrEqual(MAX_REMEMBERED_QUERIES);
    }
    const sized = new TransformOptionsParser(LIMITS);
    const long = `w=800${"&".repeat(MAX_REMEMBERED_QUERY_LENGTH)}`;
    expect(sized.parse(long).options).toEqual({ width: 800, dpr: 1, enlarge: false });
    expect(sized.size).toBe(0);
  });

  it("applies its own limits", () => {
    const parser = new TransformOptionsParser({ maxOutputDimension: 100 });
    expect(() => parser.parse("w=101")).toThrow(/an integer 1-100/);
    expect(parser.parse("w=100").options).toEqual({ width: 100, dpr: 1, enlarge: false });
  });
});

function errorOf(run: () => unknown): ProxyError {
  try {
    run();
  } catch (error) {
    if (error instanceof ProxyError) return error;
    throw error;
  }
  throw new Error("expected a refusal");
}

describe("parseImageQuery: crop, orientation, smart crop, focal point, colour, effects, download", () => {
  it.each([
    ...GRAVITIES.map((gravity) => [`gravity=${gravity}`, { gravity }] as const),
    ["fp=0.5,0.25", { focalPoint: { x: 0.5, y: 0.25 } }],
    ["fp=0,1", { focalPoint: { x: 0, y: 1 } }],
    ["fp=1.0000,0.1234", { focalPoint: { x: 1, y: 0.1234 } }],
    ["crop=0,0,1,1", { crop: { left: 0, top: 0, width: 1, height: 1 } }],
    ["crop=10,20,300,400", { crop: { left: 10, top: 20, width: 300, height: 400 } }],
    ["crop=100000,100000,100000,100000", { crop: { left: 100_000, top: 100_000, width: 100_000, height: 100_000 } }],
    ["rot=90", { rotation: 90 }],
    ["rot=180", { rotation: 180 }],
    ["rot=270", { rotation: 270 }],
    ["flip=h", { flip: "h" }],
    ["flip=v", { flip: "v" }],
    ["flip=hv", { flip: "hv" }],
    ["bg=fff", { background: "ffffff" }],
    ["bg=F0a", { background: "ff00aa" }],
    ["bg=0008", { background: "00000088" }],
    ["bg=ABCDEF", { background: "abcdef" }],
    ["bg=123456ff", { background: "123456" }],
    ["bg=12345600", { background: "12345600" }],
    ["blur=0.3", { blur: 0.3 }],
    ["blur=100", { blur: 100 }],
    ["blur=2.5", { blur: 2.5 }],
    ["sharpen=0.5", { sharpen: 0.5 }],
    ["sharpen=10", { sharpen: 10 }],
    ["f=thumbhash", { format: "thumbhash" }],
  ] as const)("accepts %s", (query, expected) => {
    expect(parse(query)).toEqual({ dpr: 1, enlarge: false, ...expected });
  });

  it("takes dl=1 apart from the transform: alone it serves the original, as an attachment", () => {
    expect(parseImageQuery(new URLSearchParams("dl=1"), LIMITS)).toEqual({ options: null, isDownload: true });
    expect(parseImageQuery(new URLSearchParams("dl=1&w=10"), LIMITS)).toEqual({
      options: { width: 10, dpr: 1, enlarge: false },
      isDownload: true,
    });
    expect(parseImageQuery(new URLSearchParams("w=10"), LIMITS).isDownload).toBe(false);
  });

  it.each([
    ["gravity", ["", "centre", "Top", "north", "smart", "top_left", "center "]],
    ["fp", ["", "0.5", "0.5,0.5,0.5", "1.1,0", "-0.1,0", "0.5,", ",0.5", "0.12345,0", "1.5,0.5", "0.5;0.5", "NaN,0"]],
    ["fp", ["1e-1,0", " 0.5,0.5", "0.5, 0.5", ".5,.5", "1.01,0"]],
    ["crop", ["", "0,0,0,10", "0,0,10,0", "1,2,3", "1,2,3,4,5", "-1,0,10,10", "0,0,100001,10", "a,b,c,d"]],
    ["crop", ["1.5,0,10,10", "0x1,0,1,1", "1,2,3,4,", " 1,2,3,4", "100001,0,1,1"]],
    ["rot", ["", "0", "45", "360", "-90", "90.0", "+90", "450"]],
    ["flip", ["", "x", "vh", "H", "hh", "both"]],
    ["bg", ["", "ff", "fffff", "fffffff", "ggg", "#fff", "fffffffff", "red", "%23fff"]],
    ["blur", ["", "0", "0.2", "0.29", "100.001", "101", "1e1", "-1", "abc", "1000"]],
    ["sharpen", ["", "0", "0.4", "10.5", "11", "1e0"]],
    ["p", ["", "nope", "thumb"]],
    ["dl", ["", "0", "true", "2", "yes"]],
    ["f", ["thumb", "ThumbHash", "blurhash"]],
    ["w", ["auto", "AUTO"]],
    ["dpr", ["auto", "Auto"]],
  ] as const)("refuses every bad %s with 400 naming it: %j", (key, values) => {
    for (const raw of values) {
      const error = parseError(`${key}=${encodeURIComponent(raw)}`);
      expect(error.code, raw).toBe("INVALID_OPTIONS");
      expect(error.status, raw).toBe(400);
      expect(error.message, raw).toContain(`option ${key}:`);
    }
  });

  it("says w=auto and dpr=auto need --client-hints, and takes them with it", () => {
    expect(parseError("w=auto").message).toContain("--client-hints");
    expect(parseError("dpr=auto").message).toContain("--client-hints");
    const hints: OptionRules = { ...LIMITS, hasClientHints: true };
    expect(parseImageQuery(new URLSearchParams("w=auto&dpr=auto"), hints).options).toEqual({
      isWidthAuto: true,
      isDprAuto: true,
      dpr: 1,
      enlarge: false,
    });
    expect(errorOf(() => parseImageQuery(new URLSearchParams("w=abc"), hints)).message).toContain("or auto");
  });

  it("refuses fp together with gravity, naming fp", () => {
    const error = parseError("w=10&h=10&gravity=top&fp=0.5,0.5");
    expect(error.code).toBe("INVALID_OPTIONS");
    expect(error.message).toContain("option fp:");
  });
});

describe("presets", () => {
  const SETTINGS = {
    presets: {
      thumb: "w=160&h=160&fit=cover&gravity=attention",
      hero: "w=1200&q=70&f=webp",
      file: "dl=1",
      auto: "w=auto&dpr=auto",
    },
    isPresetsOnly: false,
    allowedWidths: [],
    allowedQualities: [],
    hasClientHints: true,
  };
  const rules = createOptionRules(SETTINGS, LIMITS);
  const query = (text: string, with_: OptionRules = rules) => parseImageQuery(new URLSearchParams(text), with_);
  const thumb = { width: 160, height: 160, fit: "cover", gravity: "attention", dpr: 1, enlarge: false };

  it("expands p=<name>; options beside it override the preset's, in any order", () => {
    expect(query("p=thumb").options).toEqual(thumb);
    expect(query("p=thumb&w=200").options).toEqual({ ...thumb, width: 200 });
    expect(query("w=200&p=thumb").options).toEqual({ ...thumb, width: 200 });
    expect(query("p=thumb&fp=0.2,0.3").options).toEqual({
      ...thumb,
      gravity: undefined,
      focalPoint: { x: 0.2, y: 0.3 },
    });
    expect(query("fp=0.2,0.3&p=thumb").options).toEqual({
      ...thumb,
      gravity: undefined,
      focalPoint: { x: 0.2, y: 0.3 },
    });
    expect(query("p=auto&w=300").options).toEqual({ width: 300, isDprAuto: true, dpr: 1, enlarge: false });
    expect(query("p=file")).toEqual({ options: null, isDownload: true });
    expect(query("p=hero&dl=1")).toEqual({
      options: { width: 1200, quality: 70, format: "webp", dpr: 1, enlarge: false },
      isDownload: true,
    });
  });

  it("refuses an unknown preset, listing the known ones", () => {
    const error = errorOf(() => query("p=thumbnail"));
    expect(error.message).toContain("option p:");
    expect(error.message).toContain("thumb, hero, file, auto");
    expect(errorOf(() => query("p=thumb&p=hero")).message).toContain("more than once");
  });

  it.each([
    [{ bad: "gravity=middle" }, ['preset "bad"', "option gravity:"]],
    [{ nested: "p=thumb" }, ['preset "nested"', "(p)"]],
    [{ empty: "" }, ['preset "empty"', "sets no option"]],
    [{ "bad name!": "w=10" }, ['preset "bad name!"', "names are"]],
    [{ typo: "width=10" }, ['preset "typo"', '"width"']],
    [{ both: "gravity=top&fp=0.1,0.1" }, ['preset "both"', "option fp:"]],
  ])("stops the start with a ConfigError naming the preset and its bad option: %j", (presets, parts) => {
    let error: unknown;
    try {
      createOptionRules({ ...SETTINGS, presets }, LIMITS);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    for (const part of parts) expect((error as ConfigError).message).toContain(part);
  });

  it("checks presets against the proxy's other settings: client hints, allowed widths and qualities", () => {
    const check = (overrides: object) => () => createOptionRules({ ...SETTINGS, ...overrides }, LIMITS);
    expect(check({ hasClientHints: false })).toThrow(/preset "auto".*--client-hints/);
    expect(check({ allowedWidths: [160, 320] })).toThrow(/preset "hero".*allowed widths: 160, 320/);
    expect(check({ allowedQualities: [50, 75] })).toThrow(/preset "hero".*allowed qualities: 50, 75/);
  });

  it("with presets-only accepts p (and the signature) alone", () => {
    const only = createOptionRules({ ...SETTINGS, isPresetsOnly: true }, LIMITS);
    expect(query("p=thumb", only).options).toEqual(thumb);
    expect(parseImageQuery(new URLSearchParams("p=thumb&s=x&exp=1"), only, new Set(["s", "exp"])).options).toEqual(
      thumb,
    );
    for (const text of ["w=100", "p=thumb&w=100", "dl=1", "p=thumb&dl=1", "f=thumbhash"]) {
      const error = errorOf(() => query(text, only));
      expect(error.code, text).toBe("INVALID_OPTIONS");
      expect(error.message, text).toMatch(/presets only \(p=<name>: thumb, hero, file, auto\)/);
    }
  });
});

describe("allowed widths and qualities", () => {
  const rules: OptionRules = { ...LIMITS, allowedWidths: [160, 320, 640], allowedQualities: [50, 75, 90] };
  const query = (text: string) => parseImageQuery(new URLSearchParams(text), rules).options;

  it("accepts an allowed output width (w x dpr) and quality; h and a missing w are not limited", () => {
    expect(query("w=320")?.width).toBe(320);
    expect(query("w=160&dpr=2")).toMatchObject({ width: 160, dpr: 2 });
    expect(query("h=333")?.height).toBe(333);
    expect(query("q=75&f=webp")?.quality).toBe(75);
  });

  it.each([
    ["w=300", "option w: 300 px is not an allowed width; allowed widths: 160, 320, 640"],
    ["w=160&dpr=1.5", "option w: w x dpr = 240 px is not an allowed width; allowed widths: 160, 320, 640"],
    ["w=640&dpr=2", "w x dpr = 1280 px"],
    ["q=80", "option q: 80 is not an allowed quality; allowed qualities: 50, 75, 90"],
  ])("refuses %s: %s", (text, message) => {
    const error = errorOf(() => query(text));
    expect(error.code).toBe("INVALID_OPTIONS");
    expect(error.message).toContain(message);
  });
});
