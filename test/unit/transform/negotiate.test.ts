import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MAX_REMEMBERED_ACCEPT_LENGTH,
  MAX_REMEMBERED_ACCEPTS,
  negotiateFormat,
  VariantKeys,
  variantKey,
} from "../../../src/transform/negotiate.ts";
import { parseTransformOptions } from "../../../src/transform/options.ts";
import type { TransformOptions } from "../../../src/transform/options.ts";

const LIMITS = { maxOutputDimension: 8192 };
const CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
const OLD_SAFARI = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5";
const OLD_FIREFOX = "image/png,image/*;q=0.8,*/*;q=0.5";

function options(query: string): TransformOptions {
  const parsed = parseTransformOptions(new URLSearchParams(query), LIMITS);
  if (parsed === null) throw new Error("no options");
  return parsed;
}

function keyOf(query: string, accept?: string): string {
  const parsed = options(query);
  return variantKey(parsed, negotiateFormat(parsed, accept), LIMITS);
}

describe("negotiateFormat", () => {
  it("keeps the original format when f is absent, whatever Accept says", () => {
    expect(negotiateFormat(options("w=10"), CHROME)).toBe("original");
  });

  it.each(["avif", "webp", "jpeg", "png"] as const)("honours an explicit f=%s", (format) => {
    expect(negotiateFormat(options(`f=${format}`), OLD_FIREFOX)).toBe(format);
  });

  it.each([
    [CHROME, "avif"],
    [OLD_SAFARI, "webp"],
    [OLD_FIREFOX, "original"],
    [undefined, "original"],
    ["", "original"],
    ["*/*", "original"],
    ["image/*", "original"],
    ["image/webp, image/avif", "avif"],
    ["IMAGE/AVIF", "avif"],
    [" image/avif ; q=0.5 , image/webp;q=1", "avif"],
    ["image/avif;q=0, image/webp", "webp"],
    ["image/avif;q=0.000,image/webp;q=0", "original"],
    ["image/avif;q=0.001", "avif"],
    ["image/webp;q=0", "original"],
    ["image/avif;q=banana, image/webp", "webp"],
    ["image/avif;q=2", "original"],
    ["image/avif, image/avif;q=0", "original"],
    ["image/avifx, image/webpx", "original"],
    ["text/html,application/xhtml+xml,image/webp;level=1", "webp"],
  ] as const)("f=auto with Accept %j gives %s", (accept, expected) => {
    expect(negotiateFormat(options("f=auto"), accept)).toBe(expected);
  });
});

describe("variantKey", () => {
  it("is the same for every order of the same query", () => {
    const pairs = fc.uniqueArray(
      fc.constantFrom<[string, string]>(
        ["w", "320"],
        ["h", "200"],
        ["dpr", "2"],
        ["fit", "contain"],
        ["q", "55"],
        ["f", "webp"],
        ["enlarge", "1"],
      ),
      { minLength: 1, selector: ([key]) => key },
    );
    fc.assert(
      fc.property(
        pairs.chain((list) => fc.tuple(fc.constant(list), fc.shuffledSubarray(list, { minLength: list.length }))),
        ([list, shuffled]) => {
          const a = keyOf(new URLSearchParams(list).toString(), CHROME);
          const b = keyOf(new URLSearchParams(shuffled).toString(), CHROME);
          return a === b;
        },
      ),
    );
  });

  it("never mentions auto", () => {
    expect(keyOf("f=auto", CHROME)).toContain("f=avif");
    expect(keyOf("f=auto", OLD_FIREFOX)).toContain("f=original");
    expect(keyOf("f=auto", OLD_FIREFOX)).not.toContain("auto");
  });

  it.each([
    ["w=400&dpr=2", "w=800"],
    ["w=400&h=300&dpr=2", "w=800&h=600"],
    ["w=800&h=600", "w=800&h=600&fit=cover"],
    ["f=webp", "f=webp&q=80"],
    ["f=jpeg", "f=jpeg&q=80"],
    ["f=avif", "f=avif&q=60"],
    ["w=100", "w=100&fit=contain"],
    ["w=100", "w=100&enlarge=0"],
    ["f=png", "f=png&enlarge=1"],
    ["w=5000&dpr=2", "w=8192"],
    ["w=6000&h=3000&dpr=2", "w=8192&h=4096"],
    ["w=100&dpr=1", "w=100"],
  ])("%s and %s make identical bytes, so they share a key", (a, b) => {
    expect(keyOf(a, CHROME)).toBe(keyOf(b, CHROME));
  });

  it("gives different keys to every distinct output in a grid of options", () => {
    // Reference normalisation written independently of the implementation: what the pipeline actually uses.
    const formats = ["avif", "webp", "jpeg", "png", "original"] as const;
    const defaults: Record<(typeof formats)[number], string> = {
      avif: "60",
      webp: "80",
      jpeg: "80",
      png: "-",
      original: "-",
    };
    const keyToOutput = new Map<string, string>();
    const outputToKey = new Map<string, string>();
    for (const w of [undefined, 100, 101, 200])
      for (const h of [undefined, 100, 150])
        for (const dpr of [1, 2])
          for (const fit of [undefined, "cover", "contain", "fill", "inside", "outside"] as const)
            for (const quality of [undefined, 60, 80])
              for (const enlarge of [false, true])
                for (const format of formats) {
                  const opts: TransformOptions = {
                    ...(w === undefined ? {} : { width: w }),
                    ...(h === undefined ? {} : { height: h }),
                    ...(fit === undefined ? {} : { fit }),
                    ...(quality === undefined ? {} : { quality }),
                    dpr,
                    enlarge,
                  };
                  const hasSize = w !== undefined || h !== undefined;
                  const output = JSON.stringify([
                    format,
                    w === undefined ? null : w * dpr,
                    h === undefined ? null : h * dpr,
                    w !== undefined && h !== undefined ? (fit ?? "cover") : null,
                    hasSize ? enlarge : null,
                    quality === undefined ? defaults[format] : String(quality),
                  ]);
                  const key = variantKey(opts, format, LIMITS);
                  expect(keyToOutput.get(key) ?? output).toBe(output);
                  expect(outputToKey.get(output) ?? key).toBe(key);
                  keyToOutput.set(key, output);
                  outputToKey.set(output, key);
                }
    expect(keyToOutput.size).toBeGreaterThan(1000);
  });

  it("distinguishes lossless PNG from palette PNG", () => {
    expect(keyOf("f=png")).not.toBe(keyOf("f=png&q=80"));
  });

  it("keeps the keys of the options that existed before crop, rot, fp and the rest (stored entries stay valid)", () => {
    expect(keyOf("w=800&h=600&q=75&f=webp")).toBe("v1;f=webp;w=800;h=600;fit=cover;enlarge=0;q=75");
    expect(keyOf("w=100")).toBe("v1;f=original;w=100;enlarge=0;q=default");
  });

  it.each([
    ["crop", "crop=0,0,10,10", "crop=0,0,10,11"],
    ["crop", "crop=0,0,10,10", "w=10"],
    ["rot", "rot=90", "rot=270"],
    ["rot", "rot=180", "w=10"],
    ["flip", "flip=h", "flip=v"],
    ["flip", "flip=hv", "flip=h"],
    ["gravity", "w=10&h=10&gravity=top", "w=10&h=10&gravity=bottom"],
    ["gravity", "w=10&h=10&gravity=attention", "w=10&h=10&gravity=entropy"],
    ["gravity", "w=10&h=10&gravity=attention", "w=10&h=10"],
    ["fp", "w=10&h=10&fp=0.1,0.2", "w=10&h=10&fp=0.1,0.3"],
    ["fp", "w=10&h=10&fp=0.5,0.5", "w=10&h=10"],
    ["bg", "bg=fff", "bg=ffe"],
    ["bg", "bg=ffffff00", "bg=ffffff"],
    ["blur", "blur=1", "blur=1.5"],
    ["sharpen", "sharpen=1", "sharpen=2"],
    ["f=thumbhash", "f=thumbhash", "f=png"],
    ["f=thumbhash", "f=thumbhash&w=10&h=10", "f=thumbhash&w=10&h=20"],
  ])("separates two values of %s: %s vs %s", (_, a, b) => {
    expect(keyOf(a, CHROME)).not.toBe(keyOf(b, CHROME));
  });

  it.each([
    ["rot=180&flip=hv&w=10", "w=10", "a half turn and a two-way mirror undo each other"],
    ["flip=hv", "rot=180", "mirroring both ways is a half turn"],
    ["flip=v", "rot=180&flip=h", "a vertical mirror is a half turn and a horizontal one"],
    ["rot=90&flip=v", "rot=270&flip=h", "the same orientation, spelled two ways"],
    ["w=10&h=10&gravity=center", "w=10&h=10", "center is the default"],
    ["w=10&gravity=top", "w=10", "no cover crop, nothing for gravity to choose"],
    ["w=10&h=10&fit=contain&fp=0.1,0.1", "w=10&h=10&fit=contain", "no cover crop, no focal point"],
    ["bg=fff", "bg=FFFFFFFF", "one colour, spelled two ways"],
    ["fp=0.5,0.5&w=10&h=10", "h=10&w=10&fp=0.50,0.5000", "one point"],
    ["f=thumbhash&q=50&blur=3&sharpen=2", "f=thumbhash", "a placeholder has no quality or effects"],
    ["w=10&dl=1", "w=10", "dl only changes a header"],
  ])("shares one key: %s and %s (%s)", (a, b) => {
    expect(keyOf(a, CHROME)).toBe(keyOf(b, CHROME));
  });

  it("is the same for every order of the new options too", () => {
    const pairs: [string, string][] = [
      ["w", "320"],
      ["h", "200"],
      ["crop", "1,2,300,200"],
      ["rot", "90"],
      ["flip", "h"],
      ["fp", "0.25,0.75"],
      ["bg", "abc"],
      ["blur", "2"],
      ["sharpen", "1.5"],
      ["f", "webp"],
    ];
    fc.assert(
      fc.property(fc.shuffledSubarray(pairs, { minLength: pairs.length }), (shuffled) => {
        return keyOf(new URLSearchParams(shuffled).toString()) === keyOf(new URLSearchParams(pairs).toString());
      }),
    );
  });
});

describe("VariantKeys", () => {
  const ACCEPTS = [CHROME, OLD_SAFARI, OLD_FIREFOX, undefined, "", "image/avif;q=0, image/webp", "IMAGE/AVIF"];
  const QUERIES = ["w=10", "f=auto&w=800", "f=auto&w=800&q=50", "f=webp&w=320&dpr=2", "f=png", "f=png&q=80", "h=90"];

  it("gives what negotiateFormat and variantKey give, for every Accept, asked in any order", () => {
    const keys = new VariantKeys(LIMITS);
    const parsed = QUERIES.map(options);
    for (let round = 0; round < 3; round++) {
      for (const accept of round === 1 ? [...ACCEPTS].reverse() : ACCEPTS) {
        for (const opts of parsed) {
          const format = negotiateFormat(opts, accept);
          expect(keys.resolve(opts, accept)).toEqual({ format, canonical: variantKey(opts, format, LIMITS) });
        }
      }
    }
  });

  it("never hands one Accept's key to another for the same options object (no poisoning through the memory)", () => {
    const keys = new VariantKeys(LIMITS);
    const auto = options("f=auto&w=800");
    expect(keys.resolve(auto, "image/avif").format).toBe("avif");
    expect(keys.resolve(auto, "image/webp").format).toBe("webp");
    expect(keys.resolve(auto, "image/png").format).toBe("original");
    expect(keys.resolve(auto, "image/avif").canonical).toBe(keyOf("f=auto&w=800", "image/avif"));
    expect(keys.resolve(auto, "image/webp").canonical).not.toBe(keys.resolve(auto, "image/avif").canonical);
  });

  it("stays correct past MAX_REMEMBERED_ACCEPTS distinct Accept headers", () => {
    const keys = new VariantKeys(LIMITS);
    const auto = options("f=auto");
    for (let i = 0; i < MAX_REMEMBERED_ACCEPTS * 2; i++) {
      const withAvif = i % 2 === 0;
      const accept = `${withAvif ? "image/avif" : "image/webp"}, x-test/n${i}`;
      expect(keys.resolve(auto, accept).format).toBe(withAvif ? "avif" : "webp");
    }
    const long = `image/webp, ${"x".repeat(MAX_REMEMBERED_ACCEPT_LENGTH)}`;
    expect(keys.resolve(auto, long).format).toBe("webp");
  });
});
