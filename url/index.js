// imagika/url: builds, signs and lists Imagika image URLs (types and docs in index.d.ts).
//
// Plain ESM that imports nothing, so Node (>= 20), bundlers, browsers and edge runtimes load it as it is. Signing uses
// WebCrypto (globalThis.crypto.subtle), which every one of them has, and is therefore async; sign on a server only:
// whoever holds the key can sign any URL.

/**
 * Query keys in the order of the proxy's option table (src/transform/options.ts; test/unit/url.test.ts keeps them
 * equal): one spelling per set of options, so browsers, CDNs and logs see one URL where the proxy sees one variant.
 */
export const OPTION_KEYS = Object.freeze([
  "w",
  "h",
  "dpr",
  "fit",
  "q",
  "f",
  "enlarge",
  "gravity",
  "fp",
  "crop",
  "rot",
  "flip",
  "bg",
  "blur",
  "sharpen",
  "p",
  "dl",
]);

// The values of fit, f, gravity and flip: the proxy's option parser (src/transform/options.ts) imports these lists.
export const FITS = Object.freeze(["cover", "contain", "fill", "inside", "outside"]);
export const FORMATS = Object.freeze(["auto", "avif", "webp", "jpeg", "png", "thumbhash"]);
export const GRAVITIES = Object.freeze([
  "center",
  "top",
  "bottom",
  "left",
  "right",
  "top-left",
  "top-right",
  "bottom-left",
  "bottom-right",
  "attention",
  "entropy",
]);
export const FLIPS = Object.freeze(["h", "v", "hv"]);

const PRESET_NAME = /^[\w-]{1,64}$/;
const HEX_COLOUR = /^#?([\da-f]{3,4}|[\da-f]{6}|[\da-f]{8})$/i;

function invalid(key, expected, value) {
  let shown;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  return new RangeError(`imagika/url: option ${key}: expected ${expected}, got ${shown}`);
}

/** A finite number rounded to `decimals`, within [min, max]; throws naming the option otherwise. */
function number(key, value, { min, max = Infinity, decimals = 0 }) {
  const scale = 10 ** decimals;
  const rounded = typeof value === "number" ? Math.round(value * scale) / scale : NaN;
  if (!(rounded >= min && rounded <= max)) {
    const range = max === Infinity ? `≥ ${min}` : `${min}-${max}`;
    throw invalid(key, `a number ${range}${decimals > 0 ? ` (${decimals} decimals kept)` : ""}`, value);
  }
  return rounded;
}

function oneOf(key, value, values) {
  if (!values.includes(value)) throw invalid(key, `one of ${values.join(", ")}`, value);
  return value;
}

/** Each option's URL value; undefined leaves it out. Values are checked as far as they do not depend on the proxy. */
const FORMATTERS = {
  w: (v) => (v === "auto" ? "auto" : String(number("w", v, { min: 1 }))),
  h: (v) => String(number("h", v, { min: 1 })),
  // dpr=1 is the proxy's default: leaving it out keeps one URL per variant.
  dpr: (v) => (v === "auto" ? "auto" : dprValue(number("dpr", v, { min: 1, max: 4, decimals: 3 }))),
  fit: (v) => oneOf("fit", v, FITS),
  q: (v) => String(number("q", v, { min: 1, max: 100 })),
  f: (v) => oneOf("f", v, FORMATS),
  enlarge: (v) => flag("enlarge", v),
  gravity: (v) => oneOf("gravity", v, GRAVITIES),
  fp: (v) => {
    if (typeof v !== "object" || v === null) throw invalid("fp", "{ x, y }, fractions 0-1", v);
    const range = { min: 0, max: 1, decimals: 4 };
    return `${number("fp", v.x, range)},${number("fp", v.y, range)}`;
  },
  crop: (v) => {
    if (typeof v !== "object" || v === null) throw invalid("crop", "{ left, top, width, height } in pixels", v);
    const left = number("crop", v.left, { min: 0 });
    const top = number("crop", v.top, { min: 0 });
    return `${left},${top},${number("crop", v.width, { min: 1 })},${number("crop", v.height, { min: 1 })}`;
  },
  rot: (v) => (v === 0 ? undefined : String(oneOf("rot", v, [90, 180, 270]))),
  flip: (v) => oneOf("flip", v, FLIPS),
  bg: (v) => {
    const match = typeof v === "string" ? HEX_COLOUR.exec(v) : null;
    if (!match) throw invalid("bg", "3, 4, 6 or 8 hex digits (a leading # is dropped)", v);
    return match[1].toLowerCase();
  },
  blur: (v) => String(number("blur", v, { min: 0.3, max: 100, decimals: 3 })),
  sharpen: (v) => String(number("sharpen", v, { min: 0.5, max: 10, decimals: 3 })),
  p: (v) => {
    if (typeof v !== "string" || !PRESET_NAME.test(v)) throw invalid("p", "a preset name (1-64 of A-Z a-z 0-9 _ -)", v);
    return v;
  },
  dl: (v) => flag("dl", v),
};

function dprValue(dpr) {
  return dpr === 1 ? undefined : String(dpr);
}

function flag(key, value) {
  if (typeof value !== "boolean") throw invalid(key, "true or false", value);
  return value ? "1" : undefined;
}

/** Percent-encodes each segment of an origin path, keeping the `/` between them: `a b/c#1.jpg` → `a%20b/c%231.jpg`. */
export function encodeImagePath(path) {
  if (typeof path !== "string") throw new TypeError("imagika/url: the image path must be a string");
  const segments = path.replace(/^\/+/, "").split("/");
  for (const segment of segments) {
    if (segment === "" || segment === "." || segment === "..") {
      throw new TypeError(`imagika/url: the path ${JSON.stringify(path)} has an empty, "." or ".." segment`);
    }
  }
  return segments.map((segment) => encodeURIComponent(segment)).join("/");
}

/** `base` without its trailing slash; it must be an origin (`https://img.example.com`), since the proxy serves /img. */
function originOf(base) {
  if (base === undefined || base === "") return "";
  const parsed = new URL(base);
  if (parsed.pathname !== "/" || parsed.search !== "" || parsed.hash !== "") {
    throw new TypeError(`imagika/url: base must be an origin such as https://img.example.com, got ${base}`);
  }
  return parsed.origin;
}

/** The query string (without "?") of `options`, keys in OPTION_KEYS order. */
export function imageQuery(options = {}) {
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(FORMATTERS, key)) {
      throw new TypeError(`imagika/url: unknown option ${JSON.stringify(key)}; options: ${OPTION_KEYS.join(", ")}`);
    }
  }
  if (options.fp != null && options.gravity != null) {
    throw new TypeError("imagika/url: give fp or gravity, not both (a focal point replaces gravity)");
  }
  const pairs = [];
  for (const key of OPTION_KEYS) {
    const value = options[key];
    if (value === undefined || value === null) continue;
    const formatted = FORMATTERS[key](value);
    if (formatted !== undefined) pairs.push(`${key}=${formatted}`);
  }
  return pairs.join("&");
}

/**
 * `/img/<path>?<options>`: `source` is the origin path (each segment percent-encoded here), or an absolute http(s)
 * URL for the proxy's remote mode (`/img?url=…`). With no options the proxy serves the original's bytes unchanged.
 */
export function imageUrl(source, options = {}, settings = {}) {
  const query = imageQuery(options);
  const origin = originOf(settings.base);
  if (/^https?:\/\//i.test(source)) {
    return `${origin}/img?url=${encodeURIComponent(source)}${query === "" ? "" : `&${query}`}`;
  }
  return `${origin}/img/${encodeImagePath(source)}${query === "" ? "" : `?${query}`}`;
}

/**
 * A `srcset` value: one `<url> <width>w` candidate per width (sorted, repeats dropped). When `options` has both `w` and
 * `h`, they give the aspect ratio and every candidate keeps it; `h` alone and `dpr` are refused (the `w` descriptors
 * already let the browser pick for its density).
 */
export function srcSet(source, widths, options = {}, settings = {}) {
  if (options.dpr != null) throw new TypeError("imagika/url: srcSet takes no dpr: the w descriptors cover density");
  if (options.w === "auto") throw new TypeError("imagika/url: srcSet takes no w=auto");
  if (options.h != null && options.w == null) {
    throw new TypeError("imagika/url: srcSet needs w with h (they set the aspect ratio of every candidate)");
  }
  const aspect = options.h != null ? number("h", options.h, { min: 1 }) / number("w", options.w, { min: 1 }) : 0;
  const sorted = [...new Set(widths.map((width) => number("srcSet width", width, { min: 1 })))].sort((a, b) => a - b);
  if (sorted.length === 0) throw new TypeError("imagika/url: srcSet needs at least one width");
  return sorted
    .map((w) => {
      const size = aspect > 0 ? { w, h: Math.max(1, Math.round(w * aspect)) } : { w };
      return `${imageUrl(source, { ...options, ...size }, settings)} ${w}w`;
    })
    .join(", ");
}

/**
 * The proxy's canonicalQuery (src/http/signature.ts): every parameter but `s`, sorted by name then value (UTF-16
 * order, as JavaScript compares strings), each part encodeURIComponent'ed.
 */
function canonicalQuery(params) {
  const pairs = [...params].filter(([key]) => key !== "s");
  pairs.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`).join("&");
}

function subtleCrypto() {
  const subtle = globalThis.crypto?.subtle;
  if (subtle === undefined) {
    throw new Error(
      "imagika/url: signing needs WebCrypto (globalThis.crypto.subtle): Node >= 20, Deno, Bun or Workers",
    );
  }
  return subtle;
}

/** The last key imported: signing a page's URLs imports it once, not once per URL. */
let lastKey = { secret: undefined, key: undefined };

function hmacKey(secret) {
  if (typeof secret !== "string" || secret === "") throw new TypeError("imagika/url: the signing key must be a string");
  if (lastKey.secret !== secret) {
    const bytes = new TextEncoder().encode(secret);
    const key = subtleCrypto().importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    lastKey = { secret, key };
  }
  return lastKey.key;
}

function base64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function unixSeconds(expiresAt) {
  const seconds = expiresAt instanceof Date ? expiresAt.getTime() / 1000 : expiresAt;
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) {
    throw new TypeError("imagika/url: expiresAt must be a Date or unix seconds");
  }
  return Math.floor(seconds);
}

/** The key of one raw `name=value` query part, decoded as URLSearchParams decodes it. */
function keyOf(part) {
  const [first] = new URLSearchParams(part).keys();
  return first ?? "";
}

/**
 * Signs an image URL (`/img/<path>?…`, `/img?url=…`, or either with an origin) as a proxy started with
 * `--signing-key <key>` verifies it: HMAC-SHA256 over `<decoded path>?<sorted query>`, base64url, appended as `s`.
 * `expiresAt` (a Date or unix seconds) adds `exp`. The URL's own text is kept as it is, a previous `s` is replaced.
 */
export async function signImageUrl(url, key, settings = {}) {
  if (url.includes("#")) throw new TypeError("imagika/url: an image URL has no #fragment to sign");
  const queryAt = url.indexOf("?");
  const head = queryAt < 0 ? url : url.slice(0, queryAt);
  const pathname = new URL(head, "http://x").pathname;
  let source;
  if (pathname === "/img") source = "";
  else if (pathname.startsWith("/img/"))
    source = pathname.slice("/img/".length).split("/").map(decodeURIComponent).join("/");
  else throw new TypeError(`imagika/url: expected /img/<path>[?options] or /img?url=…, got ${url}`);
  const hasExpiry = settings.expiresAt !== undefined;
  const parts = (queryAt < 0 ? "" : url.slice(queryAt + 1))
    .split("&")
    .filter((part) => part !== "" && keyOf(part) !== "s" && !(hasExpiry && keyOf(part) === "exp"));
  if (hasExpiry) parts.push(`exp=${unixSeconds(settings.expiresAt)}`);
  const payload = `${source}?${canonicalQuery(new URLSearchParams(parts.join("&")))}`;
  const digest = await subtleCrypto().sign("HMAC", await hmacKey(key), new TextEncoder().encode(payload));
  parts.push(`s=${base64url(new Uint8Array(digest))}`);
  return `${head}?${parts.join("&")}`;
}

/** signImageUrl for every candidate of a `srcset` value (as srcSet writes them: `<url> <descriptor>, …`). */
export async function signSrcSet(srcset, key, settings = {}) {
  const candidates = srcset
    .split(/,\s+/)
    .map((candidate) => candidate.trim())
    .filter((candidate) => candidate !== "");
  const signed = await Promise.all(
    candidates.map(async (candidate) => {
      const [url = "", ...descriptor] = candidate.split(/\s+/);
      return [await signImageUrl(url, key, settings), ...descriptor].join(" ");
    }),
  );
  return signed.join(", ");
}
