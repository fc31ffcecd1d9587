import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { autoOr, bool, bytes, float, int, intList, list, oneOf, text } from "./parsers.ts";
import type { ParseResult } from "./parsers.ts";
import { setting } from "./settings.ts";
import type { SettingValues } from "./settings.ts";

/**
 * The proxy's settings table: every flag, its IMAGIKA_* variable, parser, default and help. `imagika proxy --help`,
 * docs/operations.md and the README's configuration table are generated from it; config.ts turns the resolved
 * values into the nested Config each module gets its slice of.
 */
const MiB = 1024 * 1024;
const CORES = availableParallelism();

export type OriginSpec =
  | { readonly kind: "http"; readonly baseUrl: string }
  | { readonly kind: "fs"; readonly root: string }
  | { readonly kind: "s3"; readonly bucket: string; readonly prefix: string };

/** `http(s)://host[:port]/prefix/`, `s3://bucket/prefix` or a local directory path. */
export function parseOriginSpec(raw: string): ParseResult<OriginSpec> {
  const expected = "an http(s):// base URL, an s3://bucket/prefix URL or a local directory path";
  const value = raw.trim();
  if (value === "" || value.includes("\0")) return { ok: false, expected };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return { ok: false, expected };
    }
    if (url.username !== "" || url.password !== "") return { ok: false, expected: `${expected}, without credentials` };
    if (url.search !== "" || url.hash !== "") return { ok: false, expected: `${expected}, without query or fragment` };
    if (url.protocol === "http:" || url.protocol === "https:") {
      const pathname = url.pathname.endsWith("/") ? url.pathname : `${url.pathname}/`;
      return { ok: true, value: { kind: "http", baseUrl: `${url.origin}${pathname}` } };
    }
    if (url.protocol === "s3:") {
      if (url.hostname === "") return { ok: false, expected };
      const prefix = url.pathname.replace(/^\/+/, "");
      return {
        ok: true,
        value: {
          kind: "s3",
          bucket: url.hostname,
          prefix: prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/`,
        },
      };
    }
    return { ok: false, expected };
  }
  return { ok: true, value: { kind: "fs", root: value } };
}

/** Every proxy setting; `imagika proxy --help` and docs/operations.md are generated from this table. */
export const PROXY_SETTINGS = {
  port: setting({
    flag: "port",
    env: "PORT",
    parse: int(0, 65_535),
    default: 8080,
    help: "TCP port to listen on (0 picks a free one)",
  }),
  host: setting({
    flag: "host",
    env: "HOST",
    parse: text(),
    default: "127.0.0.1",
    help: "Address to bind (0.0.0.0 for every interface)",
  }),
  origin: setting({
    flag: "origin",
    env: "ORIGIN",
    parse: parseOriginSpec,
    default: { kind: "http", baseUrl: "http://127.0.0.1:8081/" },
    defaultLabel: "http://127.0.0.1:8081/",
    help: "Where originals live: http(s):// base URL (may carry a path prefix), s3://bucket/prefix, or a local directory",
  }),
  s3Region: setting({ flag: "s3-region", env: "S3_REGION", parse: text(), default: "us-east-1", help: "S3 region" }),
  s3Endpoint: setting({
    flag: "s3-endpoint",
    env: "S3_ENDPOINT",
    parse: text({ allowEmpty: true }),
    default: "",
    help: "S3-compatible endpoint URL (path-style addressing); credentials come from the AWS chain",
  }),
  memoryLimit: setting<number | "auto">({
    flag: "memory-limit",
    env: "MEMORY_LIMIT",
    parse: autoOr(bytes(1)),
    default: "auto",
    defaultLabel: "auto",
    help: "Resident memory the whole process keeps under (1GiB, 768MiB); auto: 90% of the container's cgroup limit, else the cache budget + 256MiB + 10%. Divided among --workers",
  }),
  cacheMaxBytes: setting<number | "auto">({
    flag: "cache-max-bytes",
    env: "CACHE_MAX_BYTES",
    parse: autoOr(bytes(0)),
    default: "auto",
    defaultLabel: "auto",
    help: "Memory cache budget (512MiB, 1GB, plain bytes; must fit in --memory-limit); auto: half of what --memory-limit leaves after the baseline, else 512MiB",
  }),
  cacheMaxEntryBytes: setting({
    flag: "cache-max-entry-bytes",
    env: "CACHE_MAX_ENTRY_BYTES",
    parse: bytes(1),
    default: 32 * MiB,
    defaultLabel: "32MiB",
    help: "Largest single entry kept in memory; larger responses are served but not cached",
  }),
  cacheTtlSeconds: setting({
    flag: "cache-ttl-seconds",
    env: "CACHE_TTL_SECONDS",
    parse: int(0, 31_536_000),
    default: 3600,
    help: "How long an original and its variants stay fresh when the origin sends no Cache-Control or Expires (0 = until evicted); then the next request revalidates them",
  }),
  staleWhileRevalidateSeconds: setting({
    flag: "stale-while-revalidate-seconds",
    env: "STALE_WHILE_REVALIDATE_SECONDS",
    parse: int(0, 31_536_000),
    default: 60,
    help: "Within this long after an entry's freshness ran out, it is served at once while one background request revalidates it (0 = off)",
  }),
  staleIfErrorSeconds: setting({
    flag: "stale-if-error-seconds",
    env: "STALE_IF_ERROR_SECONDS",
    parse: int(0, 31_536_000),
    default: 86_400,
    help: "Within this long after an entry's freshness ran out, it is served (200) when the origin fails: 5xx, timeout, refused (0 = off)",
  }),
  originCacheControl: setting({
    flag: "origin-cache-control",
    env: "ORIGIN_CACHE_CONTROL",
    parse: oneOf(["respect", "ignore"]),
    default: "respect",
    help: "respect: the origin's s-maxage, max-age or Expires set freshness and no-store/private are not stored; ignore: --cache-ttl-seconds for everything",
  }),
  cacheOriginalsShare: setting({
    flag: "cache-originals-share",
    env: "CACHE_ORIGINALS_SHARE",
    parse: float(0, 1),
    default: 0.5,
    help: "Share of the memory budget that fetched originals may use (the rest holds variants)",
  }),
  diskCacheDir: setting({
    flag: "disk-cache-dir",
    env: "DISK_CACHE_DIR",
    parse: text({ allowEmpty: true }),
    default: "",
    help: "Directory of the persistent disk tier (survives restarts; workers may share it); empty = no disk tier",
  }),
  diskCacheMaxBytes: setting({
    flag: "disk-cache-max-bytes",
    env: "DISK_CACHE_MAX_BYTES",
    parse: bytes(1),
    default: 4 * 1024 * MiB,
    defaultLabel: "4GiB",
    help: "Disk tier budget in bytes; least recently used files are deleted beyond it",
  }),
  redisUrl: setting({
    flag: "redis-url",
    env: "REDIS_URL",
    parse: parseRedisUrl,
    default: "",
    help: "Redis shared by every instance (redis://host:6379): shared cache tier, cluster-wide coalescing, rate limits and purges; empty = none",
  }),
  redisCluster: setting({
    flag: "redis-cluster",
    env: "REDIS_CLUSTER",
    parse: parseRedisClusterSeeds,
    default: [],
    defaultLabel: "(none)",
    help: "Redis Cluster seed nodes instead of --redis-url (redis://host:7000,redis://host:7001): the same shared state, spread over every master",
  }),
  redisKeyPrefix: setting({
    flag: "redis-key-prefix",
    env: "REDIS_KEY_PREFIX",
    parse: text(),
    default: "imagika:",
    help: "Prefix of every Redis key and channel (several deployments can share one Redis)",
  }),
  redisMaxEntryBytes: setting({
    flag: "redis-max-entry-bytes",
    env: "REDIS_MAX_ENTRY_BYTES",
    parse: bytes(1),
    default: 4 * MiB,
    defaultLabel: "4MiB",
    help: "Largest entry shared through Redis; larger ones stay in memory and on disk (and are not coalesced across instances)",
  }),
  coalesceWaitMs: setting({
    flag: "coalesce-wait-ms",
    env: "COALESCE_WAIT_MS",
    parse: int(100, 600_000),
    default: 20_000,
    help: "With Redis: lifetime of the cluster-wide lock on a cold key, and the longest other instances wait for its result",
  }),
  workers: setting({
    flag: "workers",
    env: "WORKERS",
    parse: int(1, 256),
    default: 1,
    help: "Proxy processes on this host (node:cluster) sharing the port, the disk tier and Redis",
  }),
  negativeTtlSeconds: setting({
    flag: "negative-ttl-seconds",
    env: "NEGATIVE_TTL_SECONDS",
    parse: int(0, 3600),
    default: 10,
    help: "How long a 404 from the origin is remembered (0 disables)",
  }),
  cacheControlMaxAge: setting({
    flag: "cache-control-max-age",
    env: "CACHE_CONTROL_MAX_AGE",
    parse: int(0, 31_536_000),
    default: 31_536_000,
    help: "max-age (seconds) in Cache-Control on image responses",
  }),
  rateLimit: setting({
    flag: "rate-limit",
    env: "RATE_LIMIT",
    parse: float(0, 1_000_000),
    default: 50,
    help: "Sustained requests per second per client (0 disables rate limiting)",
  }),
  rateBurst: setting({
    flag: "rate-burst",
    env: "RATE_BURST",
    parse: int(1, 1_000_000),
    default: 100,
    help: "Token-bucket capacity: requests a client may make at once",
  }),
  rateLimitRedisFallback: setting({
    flag: "rate-limit-redis-fallback",
    env: "RATE_LIMIT_REDIS_FALLBACK",
    parse: bool(),
    default: true,
    bareValue: "true",
    help: "With Redis: limit per instance while Redis is unreachable (false: admit everyone until it returns)",
  }),
  trustProxy: setting({
    flag: "trust-proxy",
    env: "TRUST_PROXY",
    parse: parseTrustProxy,
    default: 0,
    bareValue: "1",
    defaultLabel: "false",
    help: "Trust X-Forwarded-For from this many proxy hops (true = 1); off: the socket address is the client",
  }),
  maxSourceBytes: setting({
    flag: "max-source-bytes",
    env: "MAX_SOURCE_BYTES",
    parse: bytes(1),
    default: 64 * MiB,
    defaultLabel: "64MiB",
    help: "Largest original the proxy will download (enforced while streaming)",
  }),
  originConnectTimeoutMs: setting({
    flag: "origin-connect-timeout-ms",
    env: "ORIGIN_CONNECT_TIMEOUT_MS",
    parse: int(1, 600_000),
    default: 5000,
    help: "Origin TCP connect timeout",
  }),
  originHeadersTimeoutMs: setting({
    flag: "origin-headers-timeout-ms",
    env: "ORIGIN_HEADERS_TIMEOUT_MS",
    parse: int(1, 600_000),
    default: 10_000,
    help: "Time the origin has to send response headers",
  }),
  originBodyTimeoutMs: setting({
    flag: "origin-body-timeout-ms",
    env: "ORIGIN_BODY_TIMEOUT_MS",
    parse: int(1, 600_000),
    default: 10_000,
    help: "Longest pause between two chunks of the origin's body",
  }),
  originTotalTimeoutMs: setting({
    flag: "origin-total-timeout-ms",
    env: "ORIGIN_TOTAL_TIMEOUT_MS",
    parse: int(1, 600_000),
    default: 30_000,
    help: "Deadline for a whole origin download",
  }),
  originConnections: setting({
    flag: "origin-connections",
    env: "ORIGIN_CONNECTIONS",
    parse: int(1, 10_000),
    default: 64,
    help: "Keep-alive connections to an HTTP origin",
  }),
  originConcurrency: setting({
    flag: "origin-concurrency",
    env: "ORIGIN_CONCURRENCY",
    parse: int(1, 10_000),
    default: 32,
    help: "Originals downloaded at once (each is buffered: bounds memory at this x the original size)",
  }),
  originQueue: setting({
    flag: "origin-queue",
    env: "ORIGIN_QUEUE",
    parse: int(0, 1_000_000),
    default: 512,
    help: "Origin fetches waiting for a slot before new ones get 503 OVERLOADED",
  }),
  maxSourcePixels: setting({
    flag: "max-source-pixels",
    env: "MAX_SOURCE_PIXELS",
    parse: int(1, 1_000_000_000),
    default: 50_000_000,
    help: "Largest original (width x height, read from the header) the proxy will decode",
  }),
  maxOutputDimension: setting({
    flag: "max-output-dimension",
    env: "MAX_OUTPUT_DIMENSION",
    parse: int(1, 16_384),
    default: 8192,
    help: "Largest output width or height after dpr",
  }),
  maxAnimationFrames: setting({
    flag: "max-animation-frames",
    env: "MAX_ANIMATION_FRAMES",
    parse: int(1, 10_000),
    default: 1,
    help: "Frames of an animated original to process (1 = first frame only)",
  }),
  transformConcurrency: setting({
    flag: "transform-concurrency",
    env: "TRANSFORM_CONCURRENCY",
    parse: int(1, 256),
    default: CORES,
    defaultLabel: "number of cores",
    help: "sharp jobs running at once",
  }),
  transformQueue: setting({
    flag: "transform-queue",
    env: "TRANSFORM_QUEUE",
    parse: int(0, 100_000),
    default: 64,
    help: "Transforms waiting for a slot before new ones get 503",
  }),
  transformTimeoutMs: setting({
    flag: "transform-timeout-ms",
    env: "TRANSFORM_TIMEOUT_MS",
    parse: int(1, 600_000),
    default: 15_000,
    help: "Time limit of one transform (503 when exceeded)",
  }),
  avifEffort: setting({
    flag: "avif-effort",
    env: "AVIF_EFFORT",
    parse: int(0, 9),
    default: 0,
    help: "AVIF encoder effort (0 fastest - 9 smallest); 0 measured ~22% smaller than WebP q80 at equal SSIM in ~170 ms for 4K to 1280 px",
  }),
  allowSvg: setting({
    flag: "allow-svg",
    env: "ALLOW_SVG",
    parse: bool(),
    default: false,
    bareValue: "true",
    help: "Rasterise SVG originals (refused by default)",
  }),
  presets: setting<Readonly<Record<string, string>>>({
    flag: "presets",
    env: "PRESETS",
    parse: presetsFile,
    default: {},
    defaultLabel: "(none)",
    help: 'JSON file of named options for p=<name>, e.g. {"thumb": "w=160&h=160&fit=cover&gravity=attention"}; checked at start',
  }),
  presetsOnly: setting({
    flag: "presets-only",
    env: "PRESETS_ONLY",
    parse: bool(),
    default: false,
    bareValue: "true",
    help: "Accept only p=<preset> (and s, exp) in image URLs; any other option is a 400",
  }),
  allowedWidths: setting({
    flag: "allowed-widths",
    env: "ALLOWED_WIDTHS",
    parse: intList(1, 16_384),
    default: [] as readonly number[],
    help: "Comma-separated output widths (w x dpr, device pixels) an image URL may ask for; others are a 400; w=auto snaps up to one. Empty: any",
  }),
  allowedQualities: setting({
    flag: "allowed-qualities",
    env: "ALLOWED_QUALITIES",
    parse: intList(1, 100),
    default: [] as readonly number[],
    help: "Comma-separated values q may take; others are a 400. Empty: any 1-100",
  }),
  clientHints: setting({
    flag: "client-hints",
    env: "CLIENT_HINTS",
    parse: bool(),
    default: false,
    bareValue: "true",
    help: "Send Accept-CH on image responses and accept w=auto and dpr=auto (from Sec-CH-Width, Sec-CH-Viewport-Width, Sec-CH-DPR)",
  }),
  adminToken: setting({
    flag: "admin-token",
    env: "ADMIN_TOKEN",
    parse: text({ allowEmpty: true }),
    default: "",
    help: "Bearer token for DELETE /api/cache; unset = admin endpoints answer 404",
  }),
  webRoot: setting({
    flag: "web-root",
    env: "WEB_ROOT",
    parse: text({ allowEmpty: true }),
    default: "",
    defaultLabel: "web/dist when built",
    help: "Directory of the built frontend served at /",
  }),
  corsOrigin: setting({
    flag: "cors-origin",
    env: "CORS_ORIGIN",
    parse: text({ allowEmpty: true }),
    default: "*",
    help: "Access-Control-Allow-Origin and Timing-Allow-Origin for image responses (empty: none)",
  }),
  signingKeys: setting({
    flag: "signing-key",
    env: "SIGNING_KEY",
    parse: list(),
    default: [] as readonly string[],
    help: "HMAC-SHA256 key(s) for signed URLs, comma-separated (first signs, all verify: rotation); set = unsigned URLs get 403",
  }),
  allowedSources: setting({
    flag: "allowed-sources",
    env: "ALLOWED_SOURCES",
    parse: list(),
    default: [] as readonly string[],
    help: "Host patterns (images.example.com, *.example.org) that enable remote mode GET /img?url=...; empty = off",
  }),
  maxRedirects: setting({
    flag: "max-redirects",
    env: "MAX_REDIRECTS",
    parse: int(0, 10),
    default: 3,
    help: "Redirects followed per origin fetch; every hop passes the SSRF guard",
  }),
  allowPrivateOrigins: setting({
    flag: "allow-private-origins",
    env: "ALLOW_PRIVATE_ORIGINS",
    parse: bool(),
    default: false,
    bareValue: "true",
    help: "Let redirects and remote mode reach loopback, private, link-local and metadata addresses (unsafe)",
  }),
  maxConnectionsPerClient: setting({
    flag: "max-connections-per-client",
    env: "MAX_CONNECTIONS_PER_CLIENT",
    parse: int(1, 1_000_000),
    default: 1024,
    help: "Open connections one client address (IPv6: its /64) may hold; more are closed at once. Behind a load balancer all connections share its address: raise it there",
  }),
  crossOriginResourcePolicy: setting({
    flag: "cross-origin-resource-policy",
    env: "CROSS_ORIGIN_RESOURCE_POLICY",
    parse: oneOf(["cross-origin", "same-site", "same-origin", "off"]),
    default: "cross-origin",
    help: "Cross-Origin-Resource-Policy on image responses (off: not sent)",
  }),
  headersTimeoutMs: setting({
    flag: "headers-timeout-ms",
    env: "HEADERS_TIMEOUT_MS",
    parse: int(100, 600_000),
    default: 10_000,
    help: "Time a client has to send a request head, from its first byte (slowloris guard; 408 after)",
  }),
  requestTimeoutMs: setting({
    flag: "request-timeout-ms",
    env: "REQUEST_TIMEOUT_MS",
    parse: int(100, 600_000),
    default: 30_000,
    help: "Time a client has to send its whole request: no request carries a body, so the shorter of this and --headers-timeout-ms applies",
  }),
  sendTimeoutMs: setting({
    flag: "send-timeout-ms",
    env: "SEND_TIMEOUT_MS",
    parse: int(1000, 3_600_000),
    default: 60_000,
    help: "Longest a reply may make no progress because the client stopped reading (slow-read guard, as nginx's send_timeout); one reply must leave within it",
  }),
  keepAliveTimeoutMs: setting({
    flag: "keep-alive-timeout-ms",
    env: "KEEP_ALIVE_TIMEOUT_MS",
    parse: int(0, 600_000),
    default: 5_000,
    help: "How long an idle keep-alive connection stays open (0: no limit)",
  }),
  shutdownTimeoutMs: setting({
    flag: "shutdown-timeout-ms",
    env: "SHUTDOWN_TIMEOUT_MS",
    parse: int(0, 600_000),
    default: 10_000,
    help: "How long in-flight requests may finish after SIGTERM",
  }),
  logLevel: setting({
    flag: "log-level",
    env: "LOG_LEVEL",
    parse: oneOf(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
    default: "info",
    help: "Log level",
  }),
  logPretty: setting({
    flag: "log-pretty",
    env: "LOG_PRETTY",
    parse: bool(),
    default: false,
    bareValue: "true",
    help: "Human-readable logs instead of JSON lines",
  }),
};

/** Largest --presets file read: thousands of presets, and nothing that could stall the start. */
const MAX_PRESETS_FILE_BYTES = 1024 * 1024;

/**
 * --presets: a JSON object of preset name → option query string. Only its shape is checked here; the options are
 * parsed with the URL vocabulary at start (createOptionRules), which names a bad preset and its bad option.
 */
function presetsFile(raw: string): ParseResult<Readonly<Record<string, string>>> {
  const expected = 'a JSON file of {"<name>": "<options>"} (for example {"thumb": "w=160&h=160&fit=cover"})';
  if (raw.trim() === "") return { ok: true, value: {} };
  let text: string;
  try {
    text = readFileSync(raw, "utf8");
  } catch (error) {
    return { ok: false, expected: `${expected}; cannot read it (${(error as NodeJS.ErrnoException).code ?? "error"})` };
  }
  if (text.length > MAX_PRESETS_FILE_BYTES) return { ok: false, expected: `${expected} of at most 1 MiB` };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return {
      ok: false,
      expected: `${expected}; it is not JSON (${error instanceof Error ? error.message : "parse error"})`,
    };
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) return { ok: false, expected };
  const presets: Record<string, string> = {};
  for (const [name, value] of Object.entries(json)) {
    if (typeof value !== "string") return { ok: false, expected: `${expected}; preset '${name}' is not a string` };
    presets[name] = value;
  }
  return { ok: true, value: Object.freeze(presets) };
}

/** `redis://` or `rediss://` URL, or empty (no Redis). */
function parseRedisUrl(raw: string): ParseResult<string> {
  const value = raw.trim();
  if (value === "") return { ok: true, value };
  try {
    const url = new URL(value);
    if ((url.protocol === "redis:" || url.protocol === "rediss:") && url.hostname !== "") return { ok: true, value };
  } catch {
    /* falls through */
  }
  return { ok: false, expected: "a redis:// or rediss:// URL" };
}

/**
 * Comma-separated `redis://` or `rediss://` seed URLs of one Redis Cluster; empty = none. A cluster has only database 0,
 * and the connections to the nodes it discovers reuse the first seed's scheme and credentials, so every seed must share
 * them.
 */
export function parseRedisClusterSeeds(raw: string): ParseResult<readonly string[]> {
  const expected =
    "comma-separated redis:// or rediss:// URLs of Redis Cluster nodes (database 0, one scheme and login)";
  const seeds = raw
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
  let first: URL | undefined;
  for (const seed of seeds) {
    let url: URL;
    try {
      url = new URL(seed);
    } catch {
      return { ok: false, expected };
    }
    const isRedis = url.protocol === "redis:" || url.protocol === "rediss:";
    const hasDatabase = url.pathname !== "" && url.pathname !== "/" && url.pathname !== "/0";
    if (!isRedis || url.hostname === "" || hasDatabase || url.search !== "" || url.hash !== "") {
      return { ok: false, expected };
    }
    first ??= url;
    const isLikeFirst =
      url.protocol === first.protocol && url.username === first.username && url.password === first.password;
    if (!isLikeFirst) return { ok: false, expected };
  }
  return { ok: true, value: seeds };
}

/** Trust X-Forwarded-For: `false`/`0` off, `true` one hop, or a hop count. */
function parseTrustProxy(raw: string): ParseResult<number> {
  const text = raw.trim().toLowerCase();
  if (["false", "no", "off", "0"].includes(text)) return { ok: true, value: 0 };
  if (["true", "yes", "on"].includes(text)) return { ok: true, value: 1 };
  const hops = int(1, 32)(text);
  return hops.ok ? hops : { ok: false, expected: "true, false or a hop count 1-32" };
}

export type ProxySettings = SettingValues<typeof PROXY_SETTINGS>;

export type LogLevel = ProxySettings["logLevel"];
