import { rgbaToThumbHash } from "thumbhash";

/** ThumbHash's own limit: it encodes at most 100x100 pixels (more is slower and no better). */
export const MAX_PLACEHOLDER_SIDE = 100;

/**
 * A ThumbHash (https://evanw.github.io/thumbhash/, ~25 bytes) of raw 8-bit RGBA pixels, as base64 text: a client
 * decodes it with thumbHashToDataURL into a blurred preview with the picture's colours, alpha and aspect ratio.
 */
export function encodePlaceholder(rgba: Buffer, width: number, height: number): Buffer {
  return Buffer.from(Buffer.from(rgbaToThumbHash(width, height, rgba)).toString("base64"), "latin1");
}
