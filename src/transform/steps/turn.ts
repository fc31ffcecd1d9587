import { isQuarterTurn, sharpOrientation } from "../orientation.ts";
import type { RenderPlan, TransformStep } from "./step.ts";
import type { Sharp } from "sharp";

function applyOrientation(image: Sharp, plan: RenderPlan): Sharp {
  const { flop, angle } = sharpOrientation(plan.orientation);
  const turned = angle === 0 ? image : image.rotate(angle);
  return flop ? turned.flop() : turned;
}

/**
 * rot/flip with a quarter turn, BEFORE the resize: sharp fits the box to the turned picture only when the turn was
 * asked for first (after a resize it scales for the unturned picture and crops the turned one). The price is a whole
 * decode: no shrink-on-load, and the full-size picture held in memory while it turns (working-set.ts counts it).
 */
export const quarterTurn: TransformStep = {
  name: "quarter-turn",
  apply: (image, plan) => (isQuarterTurn(plan.orientation) ? applyOrientation(image, plan) : image),
};

/**
 * A half turn or a mirror keeps the sides, so it goes AFTER the resize and touches only the resized picture (sharp
 * turns it before any cover crop or contain padding, which therefore apply to the turned picture, as asked).
 */
export const halfTurnAndMirror: TransformStep = {
  name: "half-turn-and-mirror",
  apply: (image, plan) => (isQuarterTurn(plan.orientation) ? image : applyOrientation(image, plan)),
};
