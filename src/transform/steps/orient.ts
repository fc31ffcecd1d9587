import type { TransformStep } from "./step.ts";

/** Rotates/flips by the EXIF Orientation tag, so phone photos come out upright once the tag is stripped. */
export const orient: TransformStep = {
  name: "orient",
  apply: (image) => image.autoOrient(),
};
