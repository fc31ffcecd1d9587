import type { TransformStep } from "./step.ts";

/**
 * Cuts the crop region from the oriented original before the resize (sharp extracts after autoOrient). libvips then
 * cannot shrink on load (it decodes the rows of the region at full size), so a crop costs more decode than a resize.
 */
export const crop: TransformStep = {
  name: "crop",
  apply: (image, plan) => (plan.crop === undefined ? image : image.extract(plan.crop)),
};
