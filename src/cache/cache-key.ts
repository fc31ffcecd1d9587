/**
 * Cache keys. An original is `o:<path>`; a variant is `v:<path>?<canonical options>`, where the canonical string
 * comes from the transform module after format negotiation, so equal outputs share a key and different ones never do.
 * Keys never contain raw request headers (Accept, Host, Cookie, Authorization).
 */
export function originalKey(path: string): string {
  return `o:${path}`;
}

export function variantCacheKey(path: string, canonicalOptions: string): string {
  return `v:${path}?${canonicalOptions}`;
}

/** True for the original's key and every variant key of `path` (per-image purge). */
export function isKeyOfPath(key: string, path: string): boolean {
  return key === `o:${path}` || key.startsWith(`v:${path}?`);
}
