import type { TransformStep } from "./step.ts";

/**
 * sharp strips EXIF, XMP and IPTC by default (camera serials, GPS). Colour: a tagged original (Display P3, Adobe RGB,
 * CMYK) is converted to sRGB and tagged sRGB (~500 B), because Firefox only colour-manages tagged images; an untagged
 * original is already treated as sRGB everywhere, so it stays untagged and small thumbnails stay small.
 */
export const colour: TransformStep = {
  name: "colour",
  apply: (image, plan) => (plan.hasProfile ? image.withIccProfile("srgb") : image),
};
