import { thumbHashToDataURL } from "thumbhash";
import { imageUrl } from "./image-url.ts";

/** The proxy fits a placeholder's pixels into 100x100 anyway (ThumbHash's limit): a wider variant is no better. */
export const PLACEHOLDER_WIDTH = 100;

/** `/img/<path>?w=100&f=thumbhash`: about 30 characters of base64 text. */
export function placeholderUrl(path: string): string {
  return imageUrl(path, { w: PLACEHOLDER_WIDTH, f: "thumbhash" });
}

/** The blurred preview (a PNG data URL, ~32x32) of a ThumbHash in base64; undefined when it is not one. */
export function placeholderDataUrl(base64: string): string | undefined {
  try {
    const bytes = Uint8Array.from(atob(base64.trim()), (char) => char.charCodeAt(0));
    return bytes.length >= 5 ? thumbHashToDataURL(bytes) : undefined; // 5 bytes: ThumbHash's fixed header
  } catch {
    return undefined; // not base64, or bytes thumbhash cannot read: the tile keeps its shimmer
  }
}

/**
 * Fetches and decodes an original's placeholder. Low priority: the first row's images are what the page is waiting
 * for; a placeholder only helps the tiles still loading. Undefined on any failure (the shimmer stays).
 */
export async function fetchPlaceholder(path: string, signal: AbortSignal): Promise<string | undefined> {
  const response = await fetch(placeholderUrl(path), { signal, priority: "low" });
  if (!response.ok) return undefined;
  return placeholderDataUrl(await response.text());
}
