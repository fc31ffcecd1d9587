import { describe, expect, it } from "vitest";
import {
  choosePreset,
  DEFAULT_SETTINGS,
  fractionsToRegion,
  playgroundUrl,
  pointToFraction,
  type PlaygroundSettings,
} from "./playground.ts";

const image = { path: "p/landscape.jpg", width: 3840, height: 2160 };
const stage = { width: 900, height: 700 };
const url = (changes: Partial<PlaygroundSettings>, dpr = 1) =>
  playgroundUrl(image, { ...DEFAULT_SETTINGS, ...changes }, stage, dpr);

describe("playgroundUrl", () => {
  it("sizes the variant to the stage and the screen's DPR", () => {
    expect(url({}, 2)).toBe("/img/p/landscape.jpg?w=960&dpr=2&f=auto");
  });

  it("uses the chosen width, format and quality", () => {
    expect(url({ width: 640, format: "webp", quality: 70 })).toBe("/img/p/landscape.jpg?w=640&q=70&f=webp");
  });

  it("asks for the original bytes, with no options at all, for the 'original' format", () => {
    expect(url({ width: 640, format: "original", quality: 70, blur: 3 }, 2)).toBe("/img/p/landscape.jpg");
  });

  it("makes a box of the chosen aspect, and sends gravity or the focal point only to a cover crop", () => {
    expect(url({ width: 640, aspect: "1:1", gravity: "attention" })).toBe(
      "/img/p/landscape.jpg?w=640&h=640&fit=cover&f=auto&gravity=attention",
    );
    expect(url({ width: 640, aspect: "16:9", focalPoint: { x: 0.25, y: 0.75 }, gravity: "top" })).toBe(
      "/img/p/landscape.jpg?w=640&h=360&fit=cover&f=auto&fp=0.25,0.75",
    );
    expect(url({ width: 640, aspect: "1:1", fit: "contain", gravity: "top", background: "#FF0000" })).toBe(
      "/img/p/landscape.jpg?w=640&h=640&fit=contain&f=auto&bg=ff0000",
    );
    expect(url({ width: 640, gravity: "attention", focalPoint: { x: 0.1, y: 0.1 } })).toBe(
      "/img/p/landscape.jpg?w=640&f=auto",
    );
  });

  it("fits a crop, turned a quarter, to the stage instead of the whole original", () => {
    const crop = { left: 100, top: 200, width: 600, height: 1200 };
    // 1200 x 600 once turned: fitting a 900 x 700 stage gives 900 → 960 on the ladder, but no more than 1200 px
    expect(url({ crop, rotation: 90, flip: "h", blur: 2.5, sharpen: 1 })).toBe(
      "/img/p/landscape.jpg?w=960&f=auto&crop=100,200,600,1200&rot=90&flip=h&blur=2.5&sharpen=1",
    );
  });

  it("hands width and format to a preset, and takes them back when it is cleared", () => {
    const withPreset = choosePreset(DEFAULT_SETTINGS, "thumb");
    expect(playgroundUrl(image, withPreset, stage, 2)).toBe("/img/p/landscape.jpg?p=thumb");
    expect(playgroundUrl(image, { ...withPreset, format: "webp", rotation: 180 }, stage, 2)).toBe(
      "/img/p/landscape.jpg?f=webp&rot=180&p=thumb",
    );
    expect(choosePreset(withPreset, "")).toEqual(DEFAULT_SETTINGS);
  });
});

describe("pointToFraction", () => {
  const rect = { left: 10, top: 20, width: 200, height: 100 };

  it("turns a pointer position into fractions of the picture, 4 decimals, clamped to its edges", () => {
    expect(pointToFraction({ x: 60, y: 70 }, rect)).toEqual({ x: 0.25, y: 0.5 });
    expect(pointToFraction({ x: 10 + 200 / 3, y: 0 }, rect)).toEqual({ x: 0.3333, y: 0 });
    expect(pointToFraction({ x: 500, y: 500 }, rect)).toEqual({ x: 1, y: 1 });
  });
});

describe("fractionsToRegion", () => {
  it("covers the drawn rectangle with whole pixels of the original, whichever way it was drawn", () => {
    expect(fractionsToRegion({ x: 0.75, y: 0.5 }, { x: 0.25, y: 0.1 }, image)).toEqual({
      left: 960,
      top: 216,
      width: 1920,
      height: 864,
    });
  });

  it("stays inside the picture and at least one pixel wide", () => {
    expect(fractionsToRegion({ x: 1, y: 1 }, { x: 1, y: 1 }, image)).toEqual({
      left: 3839,
      top: 2159,
      width: 1,
      height: 1,
    });
  });
});
