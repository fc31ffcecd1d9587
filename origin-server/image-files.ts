import { extname } from "node:path";

/** The only files the origin serves, by extension (lower-cased), with the Content-Type it sends. */
export const IMAGE_CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".png": "image/png",
  ".webp": "image/webp",
  ".avif": "image/avif",
  ".gif": "image/gif",
  ".tif": "image/tiff",
  ".tiff": "image/tiff",
};

/** Content-Type for an image file name, or undefined when the origin does not serve that kind of file. */
export function imageContentType(name: string): string | undefined {
  return Object.hasOwn(IMAGE_CONTENT_TYPES, extname(name).toLowerCase())
    ? IMAGE_CONTENT_TYPES[extname(name).toLowerCase()]
    : undefined;
}

/** Image extension and not hidden: dotfiles include the samples' temp files (`.name.jpg.<pid>.tmp`). */
export function isImageFileName(name: string): boolean {
  return !name.startsWith(".") && imageContentType(name) !== undefined;
}
