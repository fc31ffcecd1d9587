/** Reading the Prometheus text exposition and the metric selectors of PromQL expressions, for dashboard checks. */

export type FamilyType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface MetricFamily {
  readonly name: string;
  readonly type: FamilyType;
  /** Label names seen on this family's samples (without `le` and `quantile`); empty when it has no sample yet. */
  readonly labelNames: Set<string>;
  samples: number;
}

/** The series names a family of each type exposes besides its own name (text format 0.0.4). */
const SUFFIXES: Readonly<Record<FamilyType, readonly string[]>> = {
  counter: [],
  gauge: [],
  untyped: [],
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["_sum", "_count"],
};

/**
 * The family a series name belongs to: the family of that exact name, else the histogram or summary whose
 * `_bucket`/`_sum`/`_count` series it is. A gauge named `x_count` stays itself; `x_count` of a gauge `x` is no series.
 */
export function resolveFamily(
  families: ReadonlyMap<string, MetricFamily>,
  seriesName: string,
): MetricFamily | undefined {
  const exact = families.get(seriesName);
  if (exact) return exact;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!seriesName.endsWith(suffix)) continue;
    const family = families.get(seriesName.slice(0, -suffix.length));
    if (family && SUFFIXES[family.type].includes(suffix)) return family;
  }
  return undefined;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+/;
const LABEL_NAME = /([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g;

/** Families from `# TYPE` lines, with the label names their samples carry. Throws on a sample of no family. */
export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  for (const line of text.split("\n")) {
    if (line.startsWith("# TYPE ")) {
      const [name, type] = line.slice(7).split(" ") as [string, FamilyType];
      families.set(name, { name, type, labelNames: new Set(), samples: 0 });
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const family = resolveFamily(families, match[1]!); // group 1 always takes part in a match
    if (!family) throw new Error(`sample of no declared family: ${line}`);
    family.samples++;
    for (const [, label] of (match[2] ?? "").matchAll(LABEL_NAME)) {
      if (label !== "le" && label !== "quantile") family.labelNames.add(label!); // group 1 of LABEL_NAME
    }
  }
  return families;
}

export interface Selector {
  /** The series name as written (`x_bucket` stays `x_bucket`). */
  readonly name: string;
  /** Label names of its matchers (`{a="1", b=~"x"}` → a, b). */
  readonly labelNames: readonly string[];
}

const KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right"]);
/** Label lists of aggregations and vector matching hold label names, not metrics. */
const GROUPING = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g;
/** Range and subquery brackets: `[5m]`, `[$__rate_interval]`, `[1h:5m]`. */
const RANGE = /\[[^\]]*\]/g;
const STRING = String.raw`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`";
const BRACES = String.raw`\{(?:[^}"']|${STRING})*\}`;
const TOKEN = new RegExp(
  String.raw`(${STRING})|([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(${BRACES})?(\s*\()?|(${BRACES})|\d+(?:\.\d+)?(?:e[+-]?\d+)?`,
  "g",
);
const MATCHER_NAME = new RegExp(String.raw`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*(?:${STRING})`, "g");

/**
 * The metric selectors of a PromQL expression: identifiers that are neither functions (followed by `(`), keywords,
 * grouping labels nor inside strings, brackets or braces. Enough for dashboard expressions; not a full parser.
 */
export function promqlSelectors(expr: string): Selector[] {
  const selectors: Selector[] = [];
  const stripped = expr.replace(GROUPING, " ").replace(RANGE, " ");
  for (const match of stripped.matchAll(TOKEN)) {
    const [, , name, braces, call, bareBraces] = match;
    if (bareBraces !== undefined) throw new Error(`a selector without a metric name in ${expr}`);
    if (name === undefined || call !== undefined || KEYWORDS.has(name.toLowerCase())) continue;
    const labelNames = [...(braces ?? "").matchAll(MATCHER_NAME)].map(([, label]) => label!); // group 1 always matches
    selectors.push({ name, labelNames });
  }
  return selectors;
}
