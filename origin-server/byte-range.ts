/** What to send for a `Range` header on a body of `size` bytes (RFC 9110 §14.2). */
export type ByteRange =
  | { readonly kind: "full" }
  | { readonly kind: "partial"; readonly start: number; readonly end: number /* inclusive */ }
  | { readonly kind: "unsatisfiable" };

const FULL: ByteRange = { kind: "full" };
const DIGITS = /^\d+$/;

/**
 * One `bytes=` range: `first-last`, `first-` or `-suffix`. A header we cannot parse is ignored, as RFC 9110 §14.2
 * allows, and so are multiple ranges (we never send multipart/byteranges): both get the whole body.
 */
export function parseByteRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined) return FULL;
  const match = /^\s*bytes\s*=\s*([^,]*)$/i.exec(header);
  if (!match) return FULL;
  const spec = (match[1] ?? "").trim();
  const dash = spec.indexOf("-");
  if (dash === -1) return FULL;
  const first = spec.slice(0, dash).trim();
  const last = spec.slice(dash + 1).trim();
  if (first === "") {
    if (!DIGITS.test(last)) return FULL;
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "partial", start: Math.max(0, size - suffix), end: size - 1 };
  }
  if (!DIGITS.test(first) || (last !== "" && !DIGITS.test(last))) return FULL;
  const start = Number(first);
  if (last !== "" && Number(last) < start) return FULL; // invalid per §14.1.2, so ignored
  if (start >= size) return { kind: "unsatisfiable" };
  const end = last === "" ? size - 1 : Number(last);
  return { kind: "partial", start, end: Math.min(end, size - 1) };
}
