/** Image formats Imagika recognises from magic numbers (never from a Content-Type claim). */
export type ImageFormat = "jpeg" | "png" | "webp" | "avif" | "gif" | "svg" | "tiff" | "heif";

/** What a response body (and a cache entry) holds: an image, or a ThumbHash placeholder as base64 text (f=thumbhash). */
export type BodyFormat = ImageFormat | "thumbhash";

export const CONTENT_TYPES: Readonly<Record<BodyFormat, string>> = {
  jpeg: "image/jpeg",
  png: "image/png",
  webp: "image/webp",
  avif: "image/avif",
  gif: "image/gif",
  svg: "image/svg+xml",
  tiff: "image/tiff",
  heif: "image/heif",
  thumbhash: "text/plain; charset=utf-8",
};

/** The file name extension of each body format (Content-Disposition). */
export const EXTENSIONS: Readonly<Record<BodyFormat, string>> = {
  jpeg: "jpg",
  png: "png",
  webp: "webp",
  avif: "avif",
  gif: "gif",
  svg: "svg",
  tiff: "tif",
  heif: "heic",
  thumbhash: "txt",
};

function ascii(bytes: Uint8Array, offset: number, text: string): boolean {
  if (bytes.length < offset + text.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[offset + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** Sniffs the format from the first bytes; undefined when the bytes are not an image we know. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  if (ascii(bytes, 0, "\x89PNG\r\n\x1a\n")) return "png";
  if (ascii(bytes, 0, "RIFF") && ascii(bytes, 8, "WEBP")) return "webp";
  if (ascii(bytes, 0, "GIF87a") || ascii(bytes, 0, "GIF89a")) return "gif";
  if (ascii(bytes, 4, "ftyp")) {
    const brand = String.fromCharCode(...bytes.subarray(8, 12));
    if (brand === "avif" || brand === "avis") return "avif";
    if (["heic", "heix", "mif1", "msf1", "heim", "heis"].includes(brand)) return "heif";
  }
  if (ascii(bytes, 0, "II*\0") || ascii(bytes, 0, "MM\0*")) return "tiff";
  if (looksLikeSvg(bytes)) return "svg";
  return undefined;
}

function looksLikeSvg(bytes: Uint8Array): boolean {
  // SVG is text: look for an <svg element near the start, after an optional BOM, XML declaration or comments.
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, 4096)).toString("utf8");
  const trimmed = head.replace(/^\uFEFF/, "").trimStart();
  if (!trimmed.startsWith("<")) return false;
  return /<svg[\s>]/i.test(trimmed);
}
