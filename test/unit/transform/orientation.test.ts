import sharp from "sharp";
import type { Sharp } from "sharp";
import { describe, expect, it } from "vitest";
import type { Flip, Rotation } from "../../../src/transform/orientation.ts";
import {
  isQuarterTurn,
  orientationOf,
  orientPoint,
  orientRegion,
  sharpOrientation,
  UPRIGHT,
} from "../../../src/transform/orientation.ts";

const ROTATIONS: readonly (Rotation | undefined)[] = [undefined, 90, 180, 270];
const FLIPS: readonly (Flip | undefined)[] = [undefined, "h", "v", "hv"];
const WIDTH = 6;
const HEIGHT = 4;

/** A 6x4 RGB picture whose every pixel is different: (x, y, 7) at (x, y). */
function markedPicture(): Sharp {
  const pixels = Buffer.alloc(WIDTH * HEIGHT * 3);
  for (let y = 0; y < HEIGHT; y++) for (let x = 0; x < WIDTH; x++) pixels.set([x * 40, y * 60, 7], (y * WIDTH + x) * 3);
  return sharp(pixels, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } });
}

async function pixels(image: Sharp): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** The meaning of rot and flip, one sharp pass each: turn first, then mirror the turned picture (as PNG). */
async function byDefinition(rot: Rotation | undefined, flip: Flip | undefined): Promise<Buffer> {
  const { data } = await pixels(markedPicture());
  return byDefinitionOf(data, WIDTH, HEIGHT, rot, flip);
}

describe("orientation", () => {
  it("reduces the 16 spellings of rot and flip to the 8 orientations", () => {
    const seen = new Set<string>();
    for (const rot of ROTATIONS) for (const flip of FLIPS) seen.add(JSON.stringify(orientationOf(rot, flip)));
    expect(seen.size).toBe(8);
    expect(orientationOf(undefined, undefined)).toBe(UPRIGHT);
    expect(orientationOf(180, "hv")).toBe(UPRIGHT);
    expect(orientationOf(undefined, "v")).toEqual({ turn: 180, isMirrored: true });
    expect(isQuarterTurn(orientationOf(90, "v"))).toBe(true);
  });

  it.each(ROTATIONS.flatMap((rot) => FLIPS.map((flip) => [rot, flip] as const)))(
    "rot=%s flip=%s: sharp's one-pass calls give the pixels of turn-then-mirror",
    async (rot, flip) => {
      const { flop, angle } = sharpOrientation(orientationOf(rot, flip));
      let image = markedPicture().rotate(angle);
      if (flop) image = image.flop();
      const actual = await pixels(image);
      expect(actual.data.equals((await pixels(sharp(await byDefinition(rot, flip)))).data)).toBe(true);
    },
  );

  it.each(ROTATIONS.flatMap((rot) => FLIPS.map((flip) => [rot, flip] as const)))(
    "rot=%s flip=%s: orientPoint and orientRegion follow the pixels",
    async (rot, flip) => {
      const orientation = orientationOf(rot, flip);
      const { data, width, height } = await pixels(sharp(await byDefinition(rot, flip)));
      // Pixel (x, y) of the original is found where orientPoint puts its centre.
      for (const [x, y] of [
        [0, 0],
        [5, 0],
        [2, 3],
        [4, 1],
      ] as const) {
        const at = orientPoint(orientation, (x + 0.5) / WIDTH, (y + 0.5) / HEIGHT);
        const i = (Math.floor(at.y * height) * width + Math.floor(at.x * width)) * 3;
        expect([data[i], data[i + 1]]).toEqual([x * 40, y * 60]);
      }
      // A region of the original is the region orientRegion names in the oriented picture.
      const region = { left: 1, top: 1, width: 3, height: 2 };
      const cut = await pixels(markedPicture().extract(region));
      const moved = orientRegion(orientation, region, WIDTH, HEIGHT);
      const cutThenOriented = await pixels(sharp(await byDefinitionOf(cut.data, cut.width, cut.height, rot, flip)));
      const orientedThenCut = await pixels(sharp(await byDefinition(rot, flip)).extract(moved));
      expect(orientedThenCut.data.equals(cutThenOriented.data)).toBe(true);
    },
  );
});

async function byDefinitionOf(
  raw: Buffer,
  width: number,
  height: number,
  rot: Rotation | undefined,
  flip: Flip | undefined,
): Promise<Buffer> {
  const turned = await sharp(raw, { raw: { width, height, channels: 3 } })
    .rotate(rot ?? 0)
    .png()
    .toBuffer();
  let mirrored = sharp(turned);
  if (flip === "h" || flip === "hv") mirrored = mirrored.flop();
  if (flip === "v" || flip === "hv") mirrored = mirrored.flip();
  return mirrored.png().toBuffer();
}
