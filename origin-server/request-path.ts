/** Why a request path was refused, as the origin's JSON error code and HTTP status. */
export interface PathRefusal {
  readonly ok: false;
  readonly status: 400 | 404;
  readonly code: "INVALID_PATH" | "NOT_FOUND";
  readonly message: string;
}

export type RequestPath = { readonly ok: true; readonly segments: readonly string[] } | PathRefusal;

const invalid = (message: string): PathRefusal => ({ ok: false, status: 400, code: "INVALID_PATH", message });
const notFound = (message: string): PathRefusal => ({ ok: false, status: 404, code: "NOT_FOUND", message });

/**
 * Splits a raw request target (`/sub/name.jpg?x`) into decoded path segments, refusing anything that could name a
 * file outside the root or be read two ways: `.`/`..` (also when percent-encoded), an encoded `/` or `\`,
 * backslashes, NUL and other control characters, and `%` left after decoding (double encoding such as `%252e`).
 * Hidden names (leading dot) and directories (empty last segment) are not found. Symlinks are checked later, on disk.
 */
export function parseRequestPath(target: string): RequestPath {
  if (!target.startsWith("/")) return invalid("the request target must be an absolute path");
  const query = target.indexOf("?");
  const rawPath = query === -1 ? target : target.slice(0, query);
  if (rawPath.includes("\\")) return invalid("backslashes are not allowed in paths");
  const rawSegments = rawPath.slice(1).split("/");
  const segments: string[] = [];
  for (const [i, raw] of rawSegments.entries()) {
    if (raw === "") {
      if (i === rawSegments.length - 1) return notFound("directories are not listed; see /index.json");
      return invalid("empty path segment");
    }
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return invalid("malformed percent-encoding");
    }
    if (segment === "." || segment === "..") return invalid("dot segments are not allowed");
    if (/[/\\%\p{Cc}]/u.test(segment))
      return invalid("encoded separators, '%' after decoding and control characters are not allowed");
    if (segment.startsWith(".")) return notFound("hidden files are not served");
    segments.push(segment);
  }
  return { ok: true, segments };
}
