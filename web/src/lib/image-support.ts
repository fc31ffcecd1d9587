/** 1×1 AVIF and WebP made with sharp: decoding them tells us what the browser can show without guessing from UA. */
const AVIF_PROBE =
  "data:image/avif;base64,AAAAHGZ0eXBhdmlmAAAAAG1pZjFhdmlmbWlhZgAAANZtZXRhAAAAAAAAACFoZGxyAAAAAAAAAABwaWN0AAAAAAAAAAAAAAAAAAAAACJpbG9jAAAAAERAAAEAAQAAAAAA+gABAAAAAAAAACAAAAAjaWluZgAAAAAAAQAAABVpbmZlAgAAAAABAABhdjAxAAAAAA5waXRtAAAAAAABAAAAVmlwcnAAAAA4aXBjbwAAAAxhdjFDgSACAAAAABRpc3BlAAAAAAAAAAEAAAABAAAAEHBpeGkAAAAAAwgICAAAABZpcG1hAAAAAAAAAAEAAQOBAgMAAAAobWRhdBIACgc4AAaQENBpMhMZQmMEw88880EgAJBBGex24O9g";
const WEBP_PROBE = "data:image/webp;base64,UklGRiQAAABXRUJQVlA4IBgAAAAwAQCdASoBAAEAAUAmJaQAA3AA/vz0AAA=";

/** What `<img>` sends when no probe has run yet: every format the proxy might pick is one browsers show. */
export const FALLBACK_ACCEPT = "image/webp,image/*;q=0.8,*/*;q=0.5";

/**
 * `fetch()` sends `Accept: *\/*`, not the image `Accept` an `<img>` sends, so `f=auto` would negotiate JPEG. This
 * builds the header an `<img>` in this browser would send, from the formats it can actually decode.
 */
export async function detectImageAccept(): Promise<string> {
  const [hasAvif, hasWebp] = await Promise.all([canDecode(AVIF_PROBE), canDecode(WEBP_PROBE)]);
  return acceptFor({ hasAvif, hasWebp });
}

/** `{ hasAvif: true, hasWebp: true }` → `image/avif,image/webp,image/*;q=0.8,*\/*;q=0.5`. */
export function acceptFor(support: { readonly hasAvif: boolean; readonly hasWebp: boolean }): string {
  const types = [...(support.hasAvif ? ["image/avif"] : []), ...(support.hasWebp ? ["image/webp"] : [])];
  return [...types, "image/*;q=0.8", "*/*;q=0.5"].join(",");
}

function canDecode(src: string): Promise<boolean> {
  if (typeof Image === "undefined") return Promise.resolve(false);
  return new Promise((resolve) => {
    const image = new Image();
    image.onload = () => resolve(image.naturalWidth > 0);
    image.onerror = () => resolve(false);
    image.src = src;
  });
}
