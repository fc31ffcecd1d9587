import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { renderConfigReference, replaceGenerated } from "../../../src/config/reference.ts";

describe("docs/operations.md", () => {
  it("lists every setting exactly as the config tables define them (run npm run docs when this fails)", () => {
    const current = readFileSync(new URL("../../../docs/operations.md", import.meta.url), "utf8");
    expect(replaceGenerated(current, renderConfigReference())).toBe(current);
    expect(current).toContain("`--cache-max-bytes` | `IMAGIKA_CACHE_MAX_BYTES` | `auto`");
  });
});
