// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import {
  formatBytes,
  formatContentType,
  formatCount,
  formatDimensions,
  formatDuration,
  formatMs,
  formatPercent,
  savingRatio,
} from "./format.ts";

describe("formatBytes", () => {
  it("uses SI units with two significant digits below 10", () => {
    expect(formatBytes(4_123_456)).toBe("4.1 MB");
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(12_345)).toBe("12 kB");
    expect(formatBytes(1_500)).toBe("1.5 kB");
    expect(formatBytes(2_500_000_000)).toBe("2.5 GB");
  });

  it("moves to the next unit instead of printing 1000", () => {
    expect(formatBytes(999_600)).toBe("1.0 MB");
  });

  it("keeps the sign and survives non-numbers", () => {
    expect(formatBytes(-2048)).toBe("-2.0 kB");
    expect(formatBytes(Number.NaN)).toBe("–");
  });
});

describe("formatPercent", () => {
  it("formats a ratio", () => {
    expect(formatPercent(0.734)).toBe("73%");
    expect(formatPercent(0.7345, 1)).toBe("73.5%");
    expect(formatPercent(1)).toBe("100%");
  });
});

describe("formatMs", () => {
  it("picks precision by magnitude", () => {
    expect(formatMs(0.423)).toBe("0.42 ms");
    expect(formatMs(12.345)).toBe("12.3 ms");
    expect(formatMs(250.4)).toBe("250 ms");
    expect(formatMs(1234)).toBe("1.23 s");
  });
});

describe("other formatters", () => {
  it("formats counts, durations, dimensions and content types", () => {
    expect(formatCount(1234567)).toBe("1,234,567");
    expect(formatDuration(42)).toBe("42 s");
    expect(formatDuration(125)).toBe("2 min 5 s");
    expect(formatDuration(7260)).toBe("2 h 1 min");
    expect(formatDuration(90_000)).toBe("1 d 1 h");
    expect(formatDimensions(3840, 2160)).toBe("3840 × 2160");
    expect(formatContentType("image/webp")).toBe("WebP");
    expect(formatContentType("image/avif; charset=binary")).toBe("AVIF");
    expect(formatContentType("application/x-thing")).toBe("application/x-thing");
    expect(formatContentType(null)).toBe("–");
  });
});

describe("savingRatio", () => {
  it("is the share of the original not sent, negative when the variant is larger", () => {
    expect(savingRatio(1000, 250)).toBe(0.75);
    expect(savingRatio(1000, 1500)).toBe(-0.5);
    expect(savingRatio(0, 100)).toBe(0);
  });
});
