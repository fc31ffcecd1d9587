import { performance } from "node:perf_hooks";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { ProxyError } from "../../../src/errors.ts";
import { Transformer } from "../../../src/transform/pipeline.ts";
import { pngHeaderBomb, transformConfig } from "./images.ts";

// Own file: vitest runs each file in its own process (pool: forks), so RSS here is not other tests' garbage.

const MiB = 1024 * 1024;

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    return error instanceof ProxyError ? error.code : String(error);
  }
}

describe("Transformer header checks", () => {
  it("refuses a PNG whose header claims 50,000 x 50,000 px quickly, without allocating its pixels", async () => {
    const bomb = pngHeaderBomb(50_000, 50_000);
    expect(bomb.length).toBeLessThan(200);
    expect(await sharp(bomb, { limitInputPixels: false }).metadata()).toMatchObject({ width: 50_000, height: 50_000 });

    const transformer = new Transformer(transformConfig({ maxSourcePixels: 1_000_000_000 }));
    const rssBefore = process.memoryUsage().rss;
    const startedAt = performance.now();
    for (let i = 0; i < 20; i++) {
      expect(await codeOf(transformer.transform(bomb, { width: 100, dpr: 1, enlarge: false }, "webp"))).toBe(
        "SOURCE_TOO_LARGE",
      );
    }
    const elapsedMs = performance.now() - startedAt;
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    // Decoding would need 50,000² x 3 B ≈ 7 GB; the header costs kilobytes. Bounds are generous for noisy machines.
    expect(rssGrowth).toBeLessThan(50 * MiB);
    expect(elapsedMs).toBeLessThan(10_000);
    expect(transformer.stats()).toMatchObject({ transforms: 0, failures: 20, inFlight: 0 });
  });

  it("refuses a PNG under the pixel limit whose body is missing with UNSUPPORTED_IMAGE, without a memory spike", async () => {
    const bomb = pngHeaderBomb(7000, 7000); // 49 Mpx: passes the 50 Mpx header check, then the decoder finds no data
    const transformer = new Transformer(transformConfig());
    const rssBefore = process.memoryUsage().rss;
    expect(await codeOf(transformer.transform(bomb, { width: 100, dpr: 1, enlarge: false }, "webp"))).toBe(
      "UNSUPPORTED_IMAGE",
    );
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * MiB);
  });
});
