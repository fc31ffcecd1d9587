import { describeResponseError, type HttpErrorDescription } from "./http-error.ts";
import { encodeImagePath } from "./image-url.ts";

/** One original as listed by `GET /api/images`. */
export interface OriginalImage {
  readonly path: string;
  readonly width: number;
  readonly height: number;
  readonly bytes: number;
  readonly format: string;
}

/** A request that failed: the HTTP status (0 when there was no response) explained. */
export class ApiError extends Error {
  readonly description: HttpErrorDescription;
  constructor(description: HttpErrorDescription) {
    super(`${description.title}: ${description.detail}`);
    this.name = "ApiError";
    this.description = description;
  }
}

/** `GET /api/images`, validated: entries without a path or positive dimensions are dropped. */
export async function fetchImages(signal?: AbortSignal): Promise<OriginalImage[]> {
  const body = await getJson("/api/images", signal);
  const list = isRecord(body) && Array.isArray(body.images) ? (body.images as unknown[]) : undefined;
  if (!list) throw new ApiError(unexpectedShape("/api/images"));
  return list.flatMap((item): OriginalImage[] => {
    if (!isRecord(item) || typeof item.path !== "string" || item.path === "") return [];
    const width = toNumber(item.width);
    const height = toNumber(item.height);
    if (!(width > 0 && height > 0)) return [];
    return [
      {
        path: item.path,
        width,
        height,
        bytes: toNumber(item.bytes),
        format: typeof item.format === "string" ? item.format : "",
      },
    ];
  });
}

/** One `--presets` entry as `GET /api/presets` lists it. */
export interface PresetEntry {
  readonly name: string;
  /** Its options, as written in the presets file (`w=160&h=160&fit=cover`). */
  readonly options: string;
}

/** `GET /api/presets`: the proxy's presets in file order ([] when it has none), and whether they are all it accepts. */
export async function fetchPresets(signal?: AbortSignal): Promise<{ presets: PresetEntry[]; isPresetsOnly: boolean }> {
  const body = await getJson("/api/presets", signal);
  if (!isRecord(body) || !Array.isArray(body.presets)) throw new ApiError(unexpectedShape("/api/presets"));
  const presets = (body.presets as unknown[]).flatMap((item): PresetEntry[] =>
    isRecord(item) && typeof item.name === "string" && typeof item.options === "string"
      ? [{ name: item.name, options: item.options }]
      : [],
  );
  return { presets, isPresetsOnly: body.presetsOnly === true };
}

/** Sizes of one cache part against its budget. */
export interface CacheFill {
  readonly entries: number;
  readonly bytes: number;
  readonly maxBytes: number;
}

/** `GET /api/stats`: counters since the proxy started. */
export interface ProxyStats {
  readonly uptimeSeconds: number;
  readonly requests: number;
  readonly hits: number;
  readonly misses: number;
  readonly hitRatio: number;
  readonly originFetches: number;
  readonly originErrors: number;
  readonly coalesced: number;
  readonly transforms: number;
  readonly transformsInFlight: number;
  readonly transformsQueued: number;
  readonly rateLimited: number;
  /** Requests refused before routing: malformed (400), too slow (408), too large (414, 431). */
  readonly refusedRequests: number;
  /** Connections closed at once: their client already held --max-connections-per-client. */
  readonly rejectedConnections: number;
  readonly shed: number;
  readonly bytesServed: number;
  readonly originalBytesEquivalent: number;
  readonly cache: CacheFill & { readonly variants: CacheFill; readonly originals: CacheFill };
  readonly rateLimit: { readonly perSecond: number; readonly burst: number };
  readonly memory: MemoryFill;
  readonly freshness: Freshness;
  /** Entries removed by admin purges. */
  readonly purgedEntries: number;
}

/** What the proxy did with stale entries: asked the origin again, or served them stale. */
export interface Freshness {
  /** The origin answered 304: the cached bytes (and their variants) were still right. */
  readonly notModified: number;
  /** The origin answered 200: same bytes, or new ones (`originalsChanged`). */
  readonly modified: number;
  readonly failed: number;
  readonly originalsChanged: number;
  /** Served stale at once while one background request revalidated. */
  readonly staleWhileRevalidating: number;
  /** Served stale because the origin failed. */
  readonly staleIfError: number;
}

/** The process's memory against its --memory-limit (bytes), and what the limit turned away. */
export interface MemoryFill {
  readonly limitBytes: number;
  readonly rssBytes: number;
  readonly cacheBytes: number;
  /** Held by downloads and transforms in flight. */
  readonly reservedBytes: number;
  /** RSS that is neither cache nor in-flight work (runtime, garbage awaiting a collection, allocator slack). */
  readonly overheadBytes: number;
  readonly waiting: number;
  /** 503s: work that did not fit in memory in time. */
  readonly shed: number;
  /** 413s: work that could never fit. */
  readonly tooLarge: number;
}

/** `GET /api/stats`; missing numbers read as 0 so an older proxy still renders. */
export async function fetchStats(signal?: AbortSignal): Promise<ProxyStats> {
  const body = await getJson("/api/stats", signal, "no-store");
  if (!isRecord(body)) throw new ApiError(unexpectedShape("/api/stats"));
  return parseStats(body);
}

/** Narrows an `/api/stats` body; exported for tests. */
export function parseStats(body: Record<string, unknown>): ProxyStats {
  const num = (record: Record<string, unknown>, key: string): number => toNumber(record[key]);
  const fill = (value: unknown): CacheFill => {
    const record = isRecord(value) ? value : {};
    return { entries: num(record, "entries"), bytes: num(record, "bytes"), maxBytes: num(record, "maxBytes") };
  };
  const cache = isRecord(body.cache) ? body.cache : {};
  const rateLimit = isRecord(body.rateLimit) ? body.rateLimit : {};
  const memory = isRecord(body.memory) ? body.memory : {};
  const freshness = isRecord(body.freshness) ? body.freshness : {};
  const revalidations = isRecord(freshness.revalidations) ? freshness.revalidations : {};
  const staleServed = isRecord(freshness.staleServed) ? freshness.staleServed : {};
  return {
    uptimeSeconds: num(body, "uptimeSeconds"),
    requests: num(body, "requests"),
    hits: num(body, "hits"),
    misses: num(body, "misses"),
    hitRatio: num(body, "hitRatio"),
    originFetches: num(body, "originFetches"),
    originErrors: num(body, "originErrors"),
    coalesced: num(body, "coalesced"),
    transforms: num(body, "transforms"),
    transformsInFlight: num(body, "transformsInFlight"),
    transformsQueued: num(body, "transformsQueued"),
    rateLimited: num(body, "rateLimited"),
    refusedRequests: num(body, "refusedRequests"),
    rejectedConnections: num(body, "rejectedConnections"),
    shed: num(body, "shed"),
    bytesServed: num(body, "bytesServed"),
    originalBytesEquivalent: num(body, "originalBytesEquivalent"),
    cache: { ...fill(cache), variants: fill(cache.variants), originals: fill(cache.originals) },
    rateLimit: { perSecond: num(rateLimit, "perSecond"), burst: num(rateLimit, "burst") },
    memory: {
      limitBytes: num(memory, "limitBytes"),
      rssBytes: num(memory, "rssBytes"),
      cacheBytes: num(memory, "cacheBytes"),
      reservedBytes: num(memory, "reservedBytes"),
      overheadBytes: num(memory, "overheadBytes"),
      waiting: num(memory, "waiting"),
      shed: num(memory, "shed"),
      tooLarge: num(memory, "tooLarge"),
    },
    freshness: {
      notModified: num(revalidations, "notModified"),
      modified: num(revalidations, "modified"),
      failed: num(revalidations, "failed"),
      originalsChanged: num(freshness, "originalsChanged"),
      staleWhileRevalidating: num(staleServed, "whileRevalidating"),
      staleIfError: num(staleServed, "ifError"),
    },
    purgedEntries: num(body, "purgedEntries"),
  };
}

/** Outcome of an admin call, already phrased for the page. */
export interface AdminResult {
  readonly status: number;
  readonly isOk: boolean;
  readonly message: string;
}

/** What a purge removes: everything, one original and its variants, or every path starting with a prefix. */
export type PurgeTarget =
  | { readonly kind: "all" }
  | { readonly kind: "path"; readonly path: string }
  | { readonly kind: "prefix"; readonly prefix: string };

/** `DELETE /api/cache`, `/api/cache/<path>` or `/api/cache?prefix=<prefix>` (the prefix is a plain string match). */
export function purgeUrlOf(target: PurgeTarget): string {
  switch (target.kind) {
    case "all":
      return "/api/cache";
    case "path":
      return `/api/cache/${encodeImagePath(target.path)}`;
    case "prefix":
      return `/api/cache?${new URLSearchParams({ prefix: target.prefix }).toString()}`;
  }
}

/** Sends the purge with the admin token; never throws (an unreachable proxy is a result too). */
export async function purgeCache(token: string, target: PurgeTarget = { kind: "all" }): Promise<AdminResult> {
  const url = purgeUrlOf(target);
  let response: Response;
  try {
    response = await fetch(url, { method: "DELETE", headers: { Authorization: `Bearer ${token}` } });
  } catch {
    return { status: 0, isOk: false, message: "No answer from the proxy: is it running?" };
  }
  const text = await response.text().catch(() => "");
  return describeAdminResponse(response.status, text, target);
}

/** Phrases an admin response: 401/403 are token problems, 404 means the server has no admin token configured. */
export function describeAdminResponse(
  status: number,
  bodyText: string,
  target: PurgeTarget = { kind: "all" },
): AdminResult {
  const what =
    target.kind === "all"
      ? "the whole cache"
      : target.kind === "path"
        ? target.path
        : `every path starting with “${target.prefix}”`;
  if (status >= 200 && status < 300) {
    const purged = purgedCount(bodyText);
    const count = purged === undefined ? "" : ` (${purged} ${purged === 1 ? "entry" : "entries"})`;
    return { status, isOk: true, message: `Purged ${what}${count}.` };
  }
  const serverMessage = messageOf(bodyText);
  const messages: Record<number, string> = {
    401: "401 Unauthorized: enter the admin token.",
    403: "403 Forbidden: the proxy rejected this token.",
    404: "404: admin endpoints are disabled on this server (no admin token configured).",
    429: "429: rate limited; try again in a moment.",
  };
  const message = messages[status] ?? `${status}: ${serverMessage ?? "the purge failed."}`;
  return { status, isOk: false, message };
}

function purgedCount(text: string): number | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (!isRecord(value)) return undefined;
    const count = value.purged ?? value.removed ?? value.deleted;
    return typeof count === "number" ? count : undefined;
  } catch {
    return undefined;
  }
}

function messageOf(text: string): string | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isRecord(value) && typeof value.message === "string" ? value.message : undefined;
  } catch {
    return undefined;
  }
}

async function getJson(url: string, signal?: AbortSignal, cache?: RequestCache): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { Accept: "application/json" },
      ...(signal ? { signal } : {}),
      ...(cache ? { cache } : {}),
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError({
      status: 0,
      code: undefined,
      title: "Proxy unreachable",
      detail: `No answer for ${url}: is the proxy running?`,
      retryAfterSeconds: undefined,
    });
  }
  if (!response.ok) throw new ApiError(await describeResponseError(response));
  try {
    return (await response.json()) as unknown;
  } catch {
    throw new ApiError(unexpectedShape(url));
  }
}

function unexpectedShape(url: string): HttpErrorDescription {
  return {
    status: 200,
    code: undefined,
    title: "Unexpected answer",
    detail: `${url} did not return the JSON this page expects.`,
    retryAfterSeconds: undefined,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function toNumber(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}
