import type { Flip } from "../../url/index.js";

/** `rot`: a clockwise turn after EXIF orientation. */
export type Rotation = 90 | 180 | 270;
// `flip`: the type is imagika/url's (url/index.d.ts), kept exported here for the callers of this module.
export type { Flip };

/**
 * Every combination of rot and flip is one of 8 orientations (the symmetries of a rectangle): a clockwise turn, then
 * an optional left-right mirror. rot=180&flip=hv is no change at all, flip=v is a half turn then a mirror, and
 * rot=90&flip=v is rot=270&flip=h: one orientation, one cache entry, whatever the spelling.
 */
export interface Orientation {
  readonly turn: 0 | 90 | 180 | 270;
  readonly isMirrored: boolean;
}

export const UPRIGHT: Orientation = Object.freeze({ turn: 0, isMirrored: false });

/** rot first, then flip: v = half turn + mirror, hv = half turn. */
export function orientationOf(rot: Rotation | undefined, flip: Flip | undefined): Orientation {
  const halfTurns = flip === "v" || flip === "hv" ? 180 : 0;
  const turn = (((rot ?? 0) + halfTurns) % 360) as Orientation["turn"];
  const isMirrored = flip === "h" || flip === "v";
  return turn === 0 && !isMirrored ? UPRIGHT : { turn, isMirrored };
}

/** True when the turn swaps width and height. */
export function isQuarterTurn(orientation: Orientation): boolean {
  return orientation.turn === 90 || orientation.turn === 270;
}

/**
 * sharp's calls for an orientation. sharp always mirrors (flop) before it turns, and mirror·turn(θ) = turn(−θ)·mirror,
 * so a mirrored orientation is a flop followed by the opposite turn.
 */
export function sharpOrientation(orientation: Orientation): { readonly flop: boolean; readonly angle: number } {
  const { turn, isMirrored } = orientation;
  return { flop: isMirrored, angle: isMirrored ? (360 - turn) % 360 : turn };
}

/**
 * Where a point, as fractions (0-1) of the picture's width and height, lands once the picture is oriented. A clockwise
 * quarter turn takes the top-left corner to the top-right: (x, y) → (1 − y, x).
 */
export function orientPoint(orientation: Orientation, x: number, y: number): { x: number; y: number } {
  let point = { x, y };
  for (let turned = 0; turned < orientation.turn; turned += 90) point = { x: 1 - point.y, y: point.x };
  return orientation.isMirrored ? { x: 1 - point.x, y: point.y } : point;
}

/**
 * A rectangle of a width x height picture, in pixels, as it lies once the picture is oriented (sides swapped by a
 * quarter turn). Exact: every symmetry of the rectangle takes pixel edges to pixel edges.
 */
export function orientRegion(
  orientation: Orientation,
  region: { readonly left: number; readonly top: number; readonly width: number; readonly height: number },
  width: number,
  height: number,
): { left: number; top: number; width: number; height: number } {
  const a = orientPoint(orientation, region.left / width, region.top / height);
  const b = orientPoint(orientation, (region.left + region.width) / width, (region.top + region.height) / height);
  const [turnedWidth, turnedHeight] = isQuarterTurn(orientation) ? [height, width] : [width, height];
  const left = Math.round(Math.min(a.x, b.x) * turnedWidth);
  const top = Math.round(Math.min(a.y, b.y) * turnedHeight);
  return {
    left,
    top,
    width: Math.round(Math.max(a.x, b.x) * turnedWidth) - left,
    height: Math.round(Math.max(a.y, b.y) * turnedHeight) - top,
  };
}
