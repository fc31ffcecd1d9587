import { createHmac, timingSafeEqual } from "node:crypto";
import { ProxyError } from "../errors.ts";

/** Query keys that belong to signing, never to transforms. */
export const SIGNATURE_KEYS: ReadonlySet<string> = new Set(["s", "exp"]);

/**
 * Every parameter except `s`, sorted by name then value, as `name=value` with encodeURIComponent, joined by `&`.
 * Sorting makes the signature independent of parameter order, as the cache key is.
 */
export function canonicalQuery(params: URLSearchParams): string {
  const pairs: Array<[string, string]> = [];
  for (const [key, value] of params) if (key !== "s") pairs.push([key, value]);
  pairs.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`).join("&");
}

/**
 * The signed payload: `<source>?<canonical query>`, where source is the decoded image path (`photos/a b.jpg`) or,
 * in remote mode, the empty string (the `url` parameter is then part of the query).
 */
export function signaturePayload(source: string, params: URLSearchParams): string {
  return `${source}?${canonicalQuery(params)}`;
}

/** base64url HMAC-SHA256 of the payload. */
export function sign(payload: string, key: string): string {
  return createHmac("sha256", key).update(payload).digest("base64url");
}

/**
 * Accepts the URL when `s` is a valid signature under any of `keys` (rotation: old keys keep verifying) and `exp`,
 * if present, is in the future. Comparison is constant-time; every failure is the same 403 BAD_SIGNATURE.
 */
export function verifySignature(
  source: string,
  params: URLSearchParams,
  keys: readonly string[],
  nowSeconds: number,
): void {
  const given = params.getAll("s");
  if (given.length !== 1 || given[0] === undefined || given[0] === "") {
    throw new ProxyError("BAD_SIGNATURE", "this proxy only serves signed URLs: add s=<signature>");
  }
  const expParams = params.getAll("exp");
  if (expParams.length > 1) throw new ProxyError("BAD_SIGNATURE", "exp is given more than once");
  const givenBytes = Buffer.from(given[0], "base64url");
  const payload = signaturePayload(source, params);
  const isValid = keys.some((key) => {
    const expected = createHmac("sha256", key).update(payload).digest();
    return givenBytes.length === expected.length && timingSafeEqual(givenBytes, expected);
  });
  if (!isValid) throw new ProxyError("BAD_SIGNATURE", "the URL's signature does not match");
  const exp = expParams[0];
  if (exp !== undefined) {
    if (!/^\d{1,12}$/.test(exp)) throw new ProxyError("BAD_SIGNATURE", "exp must be a unix time in seconds");
    if (Number(exp) < nowSeconds) throw new ProxyError("BAD_SIGNATURE", "the signed URL has expired");
  }
}

/** Signs `/img/<path>?<query>` (or `/img?url=...`) and returns it with `s` appended; `expiresAt` adds `exp`. */
export function signImageUrl(pathAndQuery: string, key: string, expiresAt?: number): string {
  const url = new URL(pathAndQuery.startsWith("/") ? pathAndQuery : `/img/${pathAndQuery}`, "http://x");
  if (url.pathname !== "/img" && !url.pathname.startsWith("/img/")) throw new Error("expected /img/<path>[?options]");
  url.searchParams.delete("s");
  if (expiresAt !== undefined) url.searchParams.set("exp", String(expiresAt));
  const source = url.pathname === "/img" ? "" : decodeURIComponent(url.pathname.slice("/img/".length));
  const signature = sign(signaturePayload(source, url.searchParams), key);
  url.searchParams.append("s", signature);
  return `${url.pathname}${url.search}`;
}
