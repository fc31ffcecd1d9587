// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { viewerUrl } from "./Viewer.tsx";

const image = { path: "p/landscape.jpg", width: 3840, height: 2160, bytes: 4_000_000, format: "jpeg" };
const stage = { width: 900, height: 700 };

describe("viewerUrl", () => {
  it("sizes the variant to the stage and the screen's DPR", () => {
    expect(viewerUrl(image, { width: "fit", format: "auto", quality: "default" }, stage, 2)).toBe(
      "/img/p/landscape.jpg?w=960&dpr=2&f=auto",
    );
  });

  it("uses the chosen width, format and quality", () => {
    expect(viewerUrl(image, { width: 640, format: "webp", quality: 70 }, stage, 1)).toBe(
      "/img/p/landscape.jpg?w=640&q=70&f=webp",
    );
  });

  it("asks for the original bytes, with no options at all, for the 'original' format", () => {
    expect(viewerUrl(image, { width: 640, format: "original", quality: 70 }, stage, 2)).toBe("/img/p/landscape.jpg");
  });
});
