import { describe, expect, it } from "vitest";
import {
  AUTO_WIDTHS,
  ClientHintResolver,
  DEFAULT_VIEWPORT_WIDTH,
  hintsVary,
  resolveClientHints,
} from "../../../src/transform/client-hints.ts";
import type { ClientHints } from "../../../src/transform/client-hints.ts";
import { parseImageQuery } from "../../../src/transform/options.ts";
import type { OptionRules, TransformOptions } from "../../../src/transform/options.ts";
import { resolveTargetSize } from "../../../src/transform/target-size.ts";

const RULES: OptionRules = { maxOutputDimension: 8192, hasClientHints: true };

function options(query: string, rules: OptionRules = RULES): TransformOptions {
  const parsed = parseImageQuery(new URLSearchParams(query), rules).options;
  if (parsed === null) throw new Error("no options");
  return parsed;
}

/** The output box a request gets: what the cache key and the render use. */
function target(query: string, hints: ClientHints, rules: OptionRules = RULES): { width?: number; height?: number } {
  const resolved = resolveClientHints(options(query, rules), hints, rules);
  expect(resolved.isWidthAuto).toBeUndefined();
  expect(resolved.isDprAuto).toBeUndefined();
  return resolveTargetSize(resolved, rules);
}

describe("resolveClientHints", () => {
  it.each([
    ["w=auto", {}, DEFAULT_VIEWPORT_WIDTH],
    ["w=auto", { secChWidth: "500" }, 640],
    ["w=auto", { secChWidth: "640" }, 640],
    ["w=auto", { secChWidth: "641" }, 750],
    ["w=auto", { width: "300" }, 320],
    ["w=auto", { secChWidth: "300", width: "900" }, 320],
    ["w=auto", { secChViewportWidth: "390" }, 640],
    ["w=auto", { secChWidth: "100000" }, 3840],
    ["w=auto", { secChWidth: "0" }, 1280],
    ["w=auto", { secChWidth: "-5" }, 1280],
    ["w=auto", { secChWidth: "wide" }, 1280],
    ["w=auto", { secChWidth: "1e3" }, 1280],
    ["w=auto&dpr=auto", { secChViewportWidth: "390", secChDpr: "3" }, 1200],
    ["w=auto&dpr=auto", { secChWidth: "700", secChDpr: "3" }, 750],
    ["w=auto&dpr=2", { secChViewportWidth: "400" }, 828],
    ["w=auto&dpr=auto", { dpr: "2" }, 2560],
  ] as const)("%s with %j gives %i px", (query, hints, width) => {
    expect(target(query, hints).width).toBe(width);
    expect(AUTO_WIDTHS).toContain(width);
  });

  it.each([
    [{}, 1],
    [{ secChDpr: "2" }, 2],
    [{ secChDpr: "2.625" }, 3],
    [{ secChDpr: "1.1" }, 1.5],
    [{ secChDpr: "0.5" }, 1],
    [{ secChDpr: "7" }, 4],
    [{ dpr: "3" }, 3],
    [{ secChDpr: "2", dpr: "3" }, 2],
    [{ secChDpr: "x" }, 1],
  ] as const)("dpr=auto with %j is %d (clamped 1-4, rounded up to 0.5)", (hints, dpr) => {
    expect(target("w=100&dpr=auto", hints).width).toBe(100 * dpr);
    expect(target("w=100&h=40&dpr=auto", hints)).toEqual({ width: 100 * dpr, height: 40 * dpr });
  });

  it("snaps to --allowed-widths when set: w=auto and w x dpr=auto up to the next allowed width, else the largest", () => {
    const allowed: OptionRules = { ...RULES, allowedWidths: [160, 320, 640] };
    expect(target("w=auto", { secChWidth: "200" }, allowed).width).toBe(320);
    expect(target("w=auto", {}, allowed).width).toBe(640);
    expect(target("w=160&dpr=auto", { secChDpr: "1.5" }, allowed).width).toBe(320);
    expect(target("w=160&h=100&dpr=auto", { secChDpr: "1.5" }, allowed)).toEqual({ width: 320, height: 150 });
    expect(target("w=320&dpr=auto", { secChDpr: "4" }, allowed).width).toBe(640);
  });

  it("never goes past --max-output-dimension", () => {
    const small: OptionRules = { ...RULES, maxOutputDimension: 1000 };
    expect(target("w=auto", { secChWidth: "5000" }, small).width).toBe(828);
    const tiny: OptionRules = { ...RULES, maxOutputDimension: 10 };
    expect(target("w=auto", {}, tiny).width).toBe(10);
  });

  it("names every hint it consults in Vary, and none when nothing is auto", () => {
    expect(hintsVary(options("w=auto"))).toBe("Sec-CH-Width, Width, Sec-CH-Viewport-Width");
    expect(hintsVary(options("w=100&dpr=auto"))).toBe("Sec-CH-DPR, DPR");
    expect(hintsVary(options("w=auto&dpr=auto"))).toBe("Sec-CH-DPR, DPR, Sec-CH-Width, Width, Sec-CH-Viewport-Width");
    expect(hintsVary(options("w=100&dpr=2"))).toBeUndefined();
  });
});

describe("ClientHintResolver", () => {
  it("hands out one object per request shape, so the cache key is remembered; bounded by the width ladder", () => {
    const resolver = new ClientHintResolver(RULES);
    const auto = options("w=auto&dpr=auto");
    const first = resolver.resolve(auto, { secChWidth: "500", secChDpr: "2" });
    expect(resolver.resolve(auto, { secChWidth: "520", secChDpr: "1.9" })).toBe(first);
    expect(resolver.resolve(auto, { secChWidth: "700", secChDpr: "2" })).not.toBe(first);
    const distinct = new Set<TransformOptions>();
    for (let width = 1; width < 20_000; width += 7)
      for (const dpr of ["1", "1.3", "2", "2.7", "3", "3.5", "4", "9"])
        distinct.add(resolver.resolve(auto, { secChWidth: String(width), secChDpr: dpr }));
    expect(distinct.size).toBeLessThanOrEqual(AUTO_WIDTHS.length * 7);
  });
});
