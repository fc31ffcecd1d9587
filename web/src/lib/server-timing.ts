import { parseHeaderList } from "./header-list.ts";

/** One `Server-Timing` metric, e.g. `origin;dur=12.3;desc="fetch original"`. */
export interface ServerTimingEntry {
  readonly name: string;
  readonly durationMs: number | undefined;
  readonly description: string | undefined;
}

/** The phases the proxy reports, in the order a request goes through them. */
export const SERVER_TIMING_PHASES = ["queue", "origin", "transform", "total"] as const;

/** Parses a `Server-Timing` header (https://www.w3.org/TR/server-timing/); unknown metrics are kept. */
export function parseServerTiming(header: string | null | undefined): ServerTimingEntry[] {
  return parseHeaderList(header).map(({ token, params }) => {
    const dur = params.get("dur");
    const desc = params.get("desc");
    const durationMs = typeof dur === "string" && dur !== "" && Number.isFinite(Number(dur)) ? Number(dur) : undefined;
    return { name: token, durationMs, description: typeof desc === "string" ? desc : undefined };
  });
}

/** Entries from the Resource Timing API (`PerformanceResourceTiming.serverTiming`) in the same shape. */
export function fromPerformanceServerTiming(
  entries: readonly { readonly name: string; readonly duration: number; readonly description: string }[],
): ServerTimingEntry[] {
  return entries.map((entry) => ({
    name: entry.name,
    durationMs: entry.duration,
    description: entry.description === "" ? undefined : entry.description,
  }));
}
