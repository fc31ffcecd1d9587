/**
 * Cache keys. An original is `o:<path>`; a variant is `v:<path>?<canonical options>`, where the canonical string
 * comes from the transform module after format negotiation, so equal outputs share a key and different ones never do.
 * Keys never contain raw request headers (Accept, Host, Cookie, Authorization).
 *
 * A path may itself contain "?" (a decoded `%3F`, or the query of a remote URL), so a variant key's path ends at its
 * LAST "?": the canonical options never contain one (variantCacheKey refuses them).
 * ```text
 * v:q?x.jpg?v1;f=webp;w=100;enlarge=0;q=80     path "q?x.jpg", not "q"
 *   └─path──┘└─canonical options─────────┘
 * ```
 */
export function originalKey(path: string): string {
  return `o:${path}`;
}

export function variantCacheKey(path: string, canonicalOptions: string): string {
  // Cheap (a ~40-character scan) and it guards the one invariant the key's parsing rests on.
  if (canonicalOptions.includes("?")) throw new Error(`canonical options may not contain "?": ${canonicalOptions}`);
  return `v:${path}?${canonicalOptions}`;
}

/** The path an original or variant key belongs to; undefined for a key of another shape. */
export function pathOfKey(key: string): string | undefined {
  if (key.startsWith("o:")) return key.slice(2);
  if (!key.startsWith("v:")) return undefined;
  const end = key.lastIndexOf("?");
  return end < 2 ? undefined : key.slice(2, end);
}

/** True for the original's key and every variant key of `path` (per-image purge). */
export function isKeyOfPath(key: string, path: string): boolean {
  if (key.startsWith("o:")) return key.length === path.length + 2 && key.endsWith(path);
  return key.startsWith("v:") && key.lastIndexOf("?") === path.length + 2 && key.startsWith(path, 2);
}

/**
 * What a purge removes: everything, one path's original and variants (a remote URL is a path too), or those of
 * every path starting with `prefix` (compared as decoded strings, so "photo" also matches "photography.jpg"). The
 * proxy itself drops only the variants of a path whose original the origin changed (`variants`), keeping the new one.
 */
export type PurgeScope =
  | { readonly kind: "all" }
  | { readonly kind: "path"; readonly path: string }
  | { readonly kind: "prefix"; readonly prefix: string }
  | { readonly kind: "variants"; readonly path: string };

/** The predicate a purge applies to cache keys. */
export function keyMatcherOf(scope: PurgeScope): (key: string) => boolean {
  switch (scope.kind) {
    case "all":
      return () => true;
    case "path":
      return (key) => isKeyOfPath(key, scope.path);
    case "prefix":
      return (key) => pathOfKey(key)?.startsWith(scope.prefix) === true;
    case "variants":
      return (key) => key.startsWith("v:") && isKeyOfPath(key, scope.path);
  }
}

/** The predicate for paths (the negative cache and in-flight work are keyed by path). */
export function pathMatcherOf(scope: PurgeScope): (path: string) => boolean {
  switch (scope.kind) {
    case "all":
      return () => true;
    case "path":
      return (path) => path === scope.path;
    case "prefix":
      return (path) => path.startsWith(scope.prefix);
    case "variants":
      return (path) => path === scope.path;
  }
}
