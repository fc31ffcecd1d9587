import type { TransformStep } from "./step.ts";

/**
 * fp: cuts the window centred on the focal point from the picture the resize scaled to cover the box. sharp cuts it
 * after the turn, so the window is in output orientation (planFocus works it out there).
 */
export const focus: TransformStep = {
  name: "focus",
  apply: (image, plan) => (plan.focus === undefined ? image : image.extract(plan.focus.window)),
};
