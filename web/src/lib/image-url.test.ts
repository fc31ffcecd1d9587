// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { fitWidth, imageSrcSet, imageUrl, srcSetWidths } from "./image-url.ts";

describe("imageUrl", () => {
  it("is the package's builder (test/unit/url.test.ts covers it): options in the proxy's order, segments encoded", () => {
    expect(imageUrl("albums/tall one.png", { f: "auto", dpr: 2, q: 80, w: 400 })).toBe(
      "/img/albums/tall%20one.png?w=400&dpr=2&q=80&f=auto",
    );
  });
});

describe("srcSetWidths", () => {
  it("offers the ladder up to the original width, never upscaling", () => {
    expect(srcSetWidths(3840)).toEqual([160, 320, 480, 640, 960, 1280, 1920]);
    expect(srcSetWidths(1000)).toEqual([160, 320, 480, 640, 960, 1000]);
    expect(srcSetWidths(640)).toEqual([160, 320, 480, 640]);
    expect(srcSetWidths(100)).toEqual([100]);
  });
});

describe("imageSrcSet", () => {
  it("lists one candidate per width with the same options", () => {
    expect(imageSrcSet("p/x.jpg", 400, { f: "auto" })).toBe(
      "/img/p/x.jpg?w=160&f=auto 160w, /img/p/x.jpg?w=320&f=auto 320w, /img/p/x.jpg?w=400&f=auto 400w",
    );
  });
});

describe("fitWidth", () => {
  const landscape = { width: 3840, height: 2160 };

  it("fits the box and snaps up to the ladder so similar screens share a variant", () => {
    expect(fitWidth(landscape, { width: 900, height: 2000 }, 1)).toBe(960);
  });

  it("is limited by the box height for wide originals in short boxes", () => {
    // 400 px tall box × 16/9 = 711 px wide → next step 960
    expect(fitWidth(landscape, { width: 2000, height: 400 }, 1)).toBe(960);
  });

  it("never asks for more than the original once multiplied by the dpr", () => {
    expect(fitWidth(landscape, { width: 3000, height: 3000 }, 2)).toBe(1920);
    expect(fitWidth({ width: 800, height: 600 }, { width: 1200, height: 900 }, 1)).toBe(800);
  });
});
