import { ProxyError } from "../errors.ts";

/** Longest origin path accepted (decoded), and most segments: generous for real layouts, small for attackers. */
export const MAX_PATH_LENGTH = 1024;
export const MAX_PATH_SEGMENTS = 32;
const PLAIN_PATH = /^[\w-]+(?:\.[\w-]+)*(?:\/[\w-]+(?:\.[\w-]+)*)*$/;

/**
 * Turns the raw (still percent-encoded) path after `/img/` into the origin path: each segment decoded once and
 * checked. Refused: empty segments (`//`, absolute paths), `.` and `..` (encoded or not), encoded `/` or `\`,
 * NUL and other control characters, a `%` left after decoding (double encoding), and overlong paths.
 */
export function parseImagePath(raw: string): string {
  // Fast path for the common shape (letters, digits, _ and -, single dots inside names, "/" between segments): no
  // percent-decoding needed and nothing to refuse, so it is returned as is.
  if (raw.length <= MAX_PATH_LENGTH && PLAIN_PATH.test(raw) && countSegments(raw) <= MAX_PATH_SEGMENTS) return raw;
  if (raw.length === 0) throw new ProxyError("INVALID_PATH", "the URL names no image: use /img/<path>");
  const segments = raw.split("/");
  if (segments.length > MAX_PATH_SEGMENTS)
    throw new ProxyError("INVALID_PATH", `the path has more than ${MAX_PATH_SEGMENTS} segments`);
  const decoded: string[] = [];
  for (const segment of segments) {
    let value: string;
    try {
      value = decodeURIComponent(segment);
    } catch {
      throw new ProxyError("INVALID_PATH", "the path has a malformed percent-encoding");
    }
    if (value === "") throw new ProxyError("INVALID_PATH", "the path has an empty segment");
    if (value === "." || value === "..")
      throw new ProxyError("INVALID_PATH", "the path may not contain '.' or '..' segments");
    // eslint-disable-next-line no-control-regex -- control characters are exactly what we refuse
    if (/[\u0000-\u001f\u007f]/.test(value))
      throw new ProxyError("INVALID_PATH", "the path contains control characters");
    if (value.includes("/") || value.includes("\\"))
      throw new ProxyError("INVALID_PATH", "the path contains an encoded slash or a backslash");
    if (value.includes("%")) throw new ProxyError("INVALID_PATH", "the path is encoded more than once");
    decoded.push(value);
  }
  const path = decoded.join("/");
  if (path.length > MAX_PATH_LENGTH)
    throw new ProxyError("INVALID_PATH", `the path is longer than ${MAX_PATH_LENGTH} characters`);
  return path;
}

/** Segments in a path, counted without split(): the fast path above runs on every request. */
function countSegments(raw: string): number {
  let count = 1;
  for (let at = raw.indexOf("/"); at >= 0; at = raw.indexOf("/", at + 1)) count++;
  return count;
}
