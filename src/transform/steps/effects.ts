import type { TransformStep } from "./step.ts";

/** blur and sharpen, on the resized picture (sigma in output pixels), before the colour conversion and encoding. */
export const effects: TransformStep = {
  name: "effects",
  apply(image, plan) {
    let out = plan.blur === undefined ? image : image.blur(plan.blur);
    if (plan.sharpen !== undefined) out = out.sharpen({ sigma: plan.sharpen });
    return out;
  },
};
