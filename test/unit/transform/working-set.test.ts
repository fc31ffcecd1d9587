import { describe, expect, it } from "vitest";
import type { RenderPlan } from "../../../src/transform/steps/step.ts";
import { estimateWorkingSet, expectedOutputSize } from "../../../src/transform/working-set.ts";

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

describe("expectedOutputSize", () => {
  const plan = (overrides: Partial<RenderPlan>): RenderPlan => ({
    width: undefined,
    height: undefined,
    fit: "cover",
    enlarge: false,
    maxOutputDimension: 8192,
    sourceWidth: 3840,
    sourceHeight: 2160,
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

  it("is the box for cover, contain and fill, clamped to the source without enlarge", () => {
    expect(expectedOutputSize(plan({ width: 400, height: 400, fit: "cover" }))).toEqual({ width: 400, height: 400 });
    expect(expectedOutputSize(plan({ width: 8192, height: 8192, fit: "fill" }))).toEqual({ width: 3840, height: 2160 });
    expect(expectedOutputSize(plan({ width: 8192, height: 8192, fit: "fill", enlarge: true }))).toEqual({
      width: 8192,
      height: 8192,
    });
  });
});
