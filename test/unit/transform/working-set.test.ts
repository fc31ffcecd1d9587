import { describe, expect, it } from "vitest";
import { UPRIGHT } from "../../../src/transform/orientation.ts";
import type { RenderPlan } from "../../../src/transform/steps/step.ts";
import type { WorkingSetInput } from "../../../src/transform/working-set.ts";
import { coverSize, estimateWorkingSet, expectedOutputSize } from "../../../src/transform/working-set.ts";

const MiB = 1024 * 1024;

/** Peaks measured with sharp 0.35.5 on a 4K JPEG (working-set.ts has the table); the estimate must cover them. */
const MEASURED = [
  { format: "avif", width: 1280, height: 720, mib: 32.5 },
  { format: "avif", width: 2400, height: 1350, mib: 86.5 },
  { format: "avif", width: 3840, height: 2160, mib: 173.7 },
  { format: "webp", width: 1280, height: 720, mib: 14.8 },
  { format: "webp", width: 2400, height: 1350, mib: 43.8 },
  { format: "webp", width: 3840, height: 2160, mib: 95.2 },
  { format: "jpeg", width: 2400, height: 1350, mib: 39.3 },
  { format: "jpeg", width: 3840, height: 2160, mib: 69.0 },
  { format: "png", width: 2400, height: 1350, mib: 24.2 },
] as const;

describe("estimateWorkingSet", () => {
  it.each(MEASURED)("covers the measured peak of a 4K JPEG to $width px $format, without doubling it", (row) => {
    const estimate = estimateWorkingSet({
      sourceFormat: "jpeg",
      sourceWidth: 3840,
      sourceHeight: 2160,
      channels: 3,
      isRotated: false,
      outputWidth: row.width,
      outputHeight: row.height,
      frames: 1,
      format: row.format,
    });
    expect(estimate).toBeGreaterThanOrEqual(row.mib * MiB);
    expect(estimate).toBeLessThan(row.mib * MiB * 2);
  });

  it("adds the whole decoded image for a sideways portrait (measured 199.7 MiB to 2160x3840 AVIF) and for PNG", () => {
    const portrait = estimateWorkingSet({
      sourceFormat: "jpeg",
      sourceWidth: 3840,
      sourceHeight: 2160,
      channels: 3,
      isRotated: true,
      outputWidth: 2160,
      outputHeight: 3840,
      frames: 1,
      format: "avif",
    });
    expect(portrait).toBeGreaterThanOrEqual(199.7 * MiB);
    const png = estimateWorkingSet({
      sourceFormat: "png",
      sourceWidth: 3840,
      sourceHeight: 2160,
      channels: 3,
      isRotated: false,
      outputWidth: 400,
      outputHeight: 225,
      frames: 1,
      format: "webp",
    });
    expect(png).toBeGreaterThanOrEqual(20.2 * MiB);
  });
});

/**
 * Peaks of the other operations (working-set.ts has the table): the estimate covers each, without doubling it. The
 * inputs are what the pipeline passes for that render (see workingSetOf in pipeline.ts).
 */
const FOUR_K: Omit<WorkingSetInput, "outputWidth" | "outputHeight"> = {
  sourceFormat: "jpeg",
  sourceWidth: 3840,
  sourceHeight: 2160,
  channels: 3,
  isRotated: false,
  frames: 1,
  format: "webp",
};
const OPERATIONS: readonly { name: string; mib: number; input: WorkingSetInput }[] = [
  {
    name: "rot=90 to 400x400",
    mib: 35.3,
    input: { ...FOUR_K, isTurnedFirst: true, outputWidth: 400, outputHeight: 400 },
  },
  {
    name: "rot=90 to 2160x3840 AVIF",
    mib: 196.6,
    input: { ...FOUR_K, isTurnedFirst: true, outputWidth: 2160, outputHeight: 3840, format: "avif" },
  },
  {
    name: "rot=180 to 400x400 (cover 711x400 held)",
    mib: 7.3,
    input: { ...FOUR_K, outputWidth: 400, outputHeight: 400, heldPixels: 711 * 400 },
  },
  {
    name: "rot=180 at 3840x2160",
    mib: 118.3,
    input: { ...FOUR_K, outputWidth: 3840, outputHeight: 2160, heldPixels: 3840 * 2160 },
  },
  {
    name: "crop of the whole picture to 400 px",
    mib: 21.6,
    input: { ...FOUR_K, cropRows: 2160, outputWidth: 400, outputHeight: 225 },
  },
  {
    name: "crop of the middle quarter to 400 px",
    mib: 15.1,
    input: { ...FOUR_K, cropRows: 1080, outputWidth: 400, outputHeight: 225 },
  },
  {
    name: "gravity=attention to 400x400",
    mib: 8.9,
    input: { ...FOUR_K, outputWidth: 400, outputHeight: 400, smartCropPixels: 711 * 400 },
  },
  {
    name: "gravity=attention to 1280x1280",
    mib: 37.5,
    input: { ...FOUR_K, outputWidth: 1280, outputHeight: 1280, smartCropPixels: 2276 * 1280 },
  },
  {
    name: "gravity=attention to 2160x2160",
    mib: 83.4,
    input: { ...FOUR_K, outputWidth: 2160, outputHeight: 2160, smartCropPixels: 3840 * 2160 },
  },
  {
    name: "blur=100 at 1280x720",
    mib: 23.3,
    input: { ...FOUR_K, outputWidth: 1280, outputHeight: 720, blurSigma: 100 },
  },
  {
    name: "sharpen=1 at 1280x720",
    mib: 21.1,
    input: { ...FOUR_K, outputWidth: 1280, outputHeight: 720, isSharpened: true },
  },
  {
    name: "sharpen=10 at 3840x2160",
    mib: 129.0,
    input: { ...FOUR_K, outputWidth: 3840, outputHeight: 2160, isSharpened: true },
  },
  { name: "f=thumbhash", mib: 2.7, input: { ...FOUR_K, outputWidth: 100, outputHeight: 56, format: "thumbhash" } },
];

describe("estimateWorkingSet: crop, turns, smart crops, effects, placeholders", () => {
  it.each(OPERATIONS)("covers the measured peak of $name ($mib MiB), without doubling it", ({ mib, input }) => {
    const estimate = estimateWorkingSet(input);
    expect(estimate).toBeGreaterThanOrEqual(mib * MiB);
    expect(estimate).toBeLessThan(mib * MiB * 2);
  });

  it("counts more for every operation than for the plain resize", () => {
    const plain = estimateWorkingSet({ ...FOUR_K, outputWidth: 400, outputHeight: 400 });
    for (const extra of [
      { isTurnedFirst: true },
      { cropRows: 100 },
      { heldPixels: 1000 },
      { smartCropPixels: 1000 },
      { blurSigma: 0.3 },
      { isSharpened: true },
    ]) {
      expect(estimateWorkingSet({ ...FOUR_K, outputWidth: 400, outputHeight: 400, ...extra })).toBeGreaterThan(plain);
    }
  });
});

describe("expectedOutputSize", () => {
  const plan = (overrides: Partial<RenderPlan>): RenderPlan => ({
    width: undefined,
    height: undefined,
    fit: "cover",
    enlarge: false,
    maxOutputDimension: 8192,
    sourceWidth: 3840,
    sourceHeight: 2160,
    crop: undefined,
    orientation: UPRIGHT,
    gravity: "center",
    focus: undefined,
    background: undefined,
    blur: undefined,
    sharpen: undefined,
    hasAlpha: false,
    hasProfile: false,
    format: "webp",
    quality: undefined,
    avifEffort: 0,
    ...overrides,
  });

  it("scales inside the box for a width alone, never past the source without enlarge", () => {
    expect(expectedOutputSize(plan({ width: 1280 }))).toEqual({ width: 1280, height: 720 });
    expect(expectedOutputSize(plan({ width: 5000 }))).toEqual({ width: 3840, height: 2160 });
    expect(expectedOutputSize(plan({ width: 5000, enlarge: true }))).toEqual({ width: 5000, height: 2813 });
    expect(expectedOutputSize(plan({}))).toEqual({ width: 3840, height: 2160 });
  });

  it("is the whole box for contain, which pads rather than shrink the box", () => {
    expect(expectedOutputSize(plan({ width: 8192, height: 8192, fit: "contain" }))).toEqual({
      width: 8192,
      height: 8192,
    });
  });

  it("is the focal window for fp, and coverSize is the picture the window is cut from", () => {
    const focused = plan({
      width: 400,
      height: 400,
      focus: { coverWidth: 711, coverHeight: 400, window: { left: 0, top: 0, width: 400, height: 400 } },
    });
    expect(expectedOutputSize(focused)).toEqual({ width: 400, height: 400 });
    expect(coverSize(focused)).toEqual({ width: 711, height: 400 });
    expect(coverSize(plan({ width: 400, height: 400 }))).toEqual({ width: 711, height: 400 });
    expect(coverSize(plan({ width: 8000, height: 100 }))).toEqual({ width: 3840, height: 2160 });
    expect(coverSize(plan({ width: 7680, height: 100, enlarge: true }))).toEqual({ width: 7680, height: 4320 });
  });

  it("is the box for cover and fill, clamped to the source without enlarge", () => {
    expect(expectedOutputSize(plan({ width: 400, height: 400, fit: "cover" }))).toEqual({ width: 400, height: 400 });
    expect(expectedOutputSize(plan({ width: 8192, height: 8192, fit: "fill" }))).toEqual({ width: 3840, height: 2160 });
    expect(expectedOutputSize(plan({ width: 8192, height: 8192, fit: "fill", enlarge: true }))).toEqual({
      width: 8192,
      height: 8192,
    });
  });
});
