/** A JSON object as /api/stats returns it. */
export type StatsSnapshot = Record<string, unknown>;

/**
 * Numbers that describe something every worker shares (the configuration, the disk tier's one directory, which each
 * worker indexes for itself) or that are not additive: taken as the largest of the workers' values instead of the
 * sum. Paths are dot-joined keys of /api/stats.
 */
const LARGEST: ReadonlySet<string> = new Set([
  "uptimeSeconds",
  "rateLimit.perSecond",
  "rateLimit.burst",
  "tiers.disk.entries",
  "tiers.disk.bytes",
  "tiers.disk.maxBytes",
]);

/**
 * One /api/stats answer for `--workers N` from each worker's own: counters and per-worker memory figures are summed,
 * shared figures (LARGEST) take the largest value, flags are true only when true everywhere, and text (the origin)
 * comes from the first worker. `hitRatio` is recomputed from the summed hits and misses, and `workers` says how many
 * workers answered.
 */
export function mergeStats(snapshots: readonly StatsSnapshot[]): StatsSnapshot {
  const merged = mergeObjects(snapshots, "");
  const hits = typeof merged.hits === "number" ? merged.hits : 0;
  const misses = typeof merged.misses === "number" ? merged.misses : 0;
  if ("hitRatio" in merged) merged.hitRatio = hits + misses === 0 ? 0 : hits / (hits + misses);
  merged.workers = snapshots.length;
  return merged;
}

function mergeObjects(objects: readonly StatsSnapshot[], prefix: string): StatsSnapshot {
  const merged: StatsSnapshot = {};
  for (const object of objects) {
    for (const key of Object.keys(object)) {
      if (key in merged) continue;
      const values = objects.map((o) => o[key]).filter((value) => value !== undefined);
      merged[key] = mergeValues(values, `${prefix}${key}`);
    }
  }
  return merged;
}

function mergeValues(values: readonly unknown[], path: string): unknown {
  const [first] = values;
  if (typeof first === "number") {
    const numbers = values.filter((value): value is number => typeof value === "number");
    return LARGEST.has(path) ? Math.max(...numbers) : numbers.reduce((sum, value) => sum + value, 0);
  }
  if (typeof first === "boolean") return values.every((value) => value === true);
  if (isObject(first)) return mergeObjects(values.filter(isObject), `${path}.`);
  return first;
}

function isObject(value: unknown): value is StatsSnapshot {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
