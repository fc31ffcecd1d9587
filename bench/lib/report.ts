/**
 * Systems measured with wrk: Imagika (one process, or `imagika-2w` with --workers 2), nginx proxy_cache ("nginx",
 * the issue-2 peer), Varnish, nginx serving the originals from disk, a bare node:http server ("node-bare", small file
 * only), and ipx (re-transforms every request).
 */
export type SystemName = "imagika" | "imagika-2w" | "nginx" | "varnish" | "nginx-static" | "node-bare" | "ipx";

/** One wrk run against one system and one file. */
export interface Measurement {
  readonly system: SystemName;
  readonly fixture: string;
  readonly round: number;
  readonly requests: number;
  readonly requestsPerSecond: number;
  /** Response bytes (headers included) per second, in 10^6 bytes. */
  readonly megabytesPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** CPU seconds (user + system) the server processes used during the run. */
  readonly serverCpuSeconds: number;
  readonly cpuMicrosPerRequest: number;
  /** Share of one core the server used during the run (1 = the pinned core was saturated). */
  readonly serverCoreShare: number;
  /**
   * How busy the server's core was overall (0-1, pinned runs only): above serverCoreShare means something else ran
   * there too (other processes on a shared machine, or loopback softirq work billed to no process).
   */
  readonly serverCoreBusyShare: number | undefined;
  /** Peak RSS (VmHWM) of the serving process after the run, bytes. */
  readonly peakRssBytes: number;
  readonly loadGeneratorCoreShare: number;
}

/** A run where other work took more than this share of the server's core is flagged as contended. */
export const CONTENDED_SHARE = 0.15;

/** Share of the server's core used by anything but the server during a run (0 when unknown). */
export function otherWorkShare(m: Measurement): number {
  return m.serverCoreBusyShare === undefined ? 0 : Math.max(0, m.serverCoreBusyShare - m.serverCoreShare);
}

export function isContended(m: Measurement): boolean {
  return otherWorkShare(m) > CONTENDED_SHARE;
}

export interface Summary {
  readonly system: SystemName;
  readonly fixture: string;
  readonly runs: number;
  readonly requestsPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Sum over every run, not a median: one error is worth seeing. */
  readonly errors: number;
  readonly cpuMicrosPerRequest: number;
  readonly serverCoreShare: number;
  readonly serverCoreBusyShare: number | undefined;
  readonly peakRssBytes: number;
  readonly loadGeneratorCoreShare: number;
  /** Runs where other work took more than CONTENDED_SHARE of the server's core. */
  readonly contendedRuns: number;
  /** (max - min) / median of requests/s across rounds: how much this run moved. */
  readonly requestsPerSecondSpread: number;
}

export interface Target {
  readonly fixture: string;
  readonly label: string;
  /** Imagika requests/s ÷ nginx requests/s must be at least this. */
  readonly minRequestsRatio: number;
  /** Imagika CPU µs per request must be at most this. */
  readonly maxCpuMicrosPerRequest: number;
}

export interface Comparison {
  readonly fixture: string;
  readonly label: string;
  readonly imagika: Summary;
  readonly nginx: Summary;
  readonly requestsRatio: number;
  readonly cpuRatio: number;
  readonly target: Target;
  readonly meetsRequestsTarget: boolean;
  readonly meetsCpuTarget: boolean;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  // sorted has at least one element, and middle - 1 >= 0 whenever the length is even
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function summarize(runs: readonly Measurement[]): Summary {
  const first = runs[0];
  if (!first) throw new Error("summarize: no runs");
  const rps = runs.map((r) => r.requestsPerSecond);
  const medianRps = median(rps);
  return {
    system: first.system,
    fixture: first.fixture,
    runs: runs.length,
    requestsPerSecond: medianRps,
    megabytesPerSecond: median(runs.map((r) => r.megabytesPerSecond)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
    cpuMicrosPerRequest: median(runs.map((r) => r.cpuMicrosPerRequest)),
    serverCoreShare: median(runs.map((r) => r.serverCoreShare)),
    serverCoreBusyShare: runs.every((r) => r.serverCoreBusyShare !== undefined)
      ? median(runs.map((r) => r.serverCoreBusyShare ?? 0))
      : undefined,
    peakRssBytes: Math.max(...runs.map((r) => r.peakRssBytes)),
    loadGeneratorCoreShare: median(runs.map((r) => r.loadGeneratorCoreShare)),
    contendedRuns: runs.filter(isContended).length,
    requestsPerSecondSpread: medianRps > 0 ? (Math.max(...rps) - Math.min(...rps)) / medianRps : 0,
  };
}

export function compare(imagika: Summary, nginx: Summary, target: Target): Comparison {
  const requestsRatio = imagika.requestsPerSecond / nginx.requestsPerSecond;
  const cpuRatio = imagika.cpuMicrosPerRequest / nginx.cpuMicrosPerRequest;
  return {
    fixture: target.fixture,
    label: target.label,
    imagika,
    nginx,
    requestsRatio,
    cpuRatio,
    target,
    meetsRequestsTarget: requestsRatio >= target.minRequestsRatio,
    meetsCpuTarget: imagika.cpuMicrosPerRequest <= target.maxCpuMicrosPerRequest,
  };
}

const integer = (n: number): string => Math.round(n).toLocaleString("en-US");
const fixed = (n: number, digits: number): string => n.toFixed(digits);
const mebibytes = (bytes: number): string => (bytes / 1024 ** 2).toFixed(0);
const verdict = (ok: boolean): string => (ok ? "pass" : "FAIL");

/** Rows of the per-system table: the same cells for the console and Markdown. */
function systemRows(comparisons: readonly Comparison[]): string[][] {
  const rows: string[][] = [];
  for (const c of comparisons) {
    for (const s of [c.imagika, c.nginx]) {
      rows.push(summaryRow(c.label, s));
    }
  }
  return rows;
}

const SYSTEM_HEADER = [
  "file",
  "system",
  "req/s",
  "spread",
  "MB/s",
  "p50 ms",
  "p99 ms",
  "errors",
  "CPU µs/req",
  "server cores",
  "core busy",
  "contended",
  "wrk cores",
  "peak RSS MiB",
];

function comparisonRows(comparisons: readonly Comparison[]): string[][] {
  return comparisons.map((c) => [
    c.label,
    `${fixed(c.requestsRatio, 2)}x`,
    `>= ${fixed(c.target.minRequestsRatio, 2)}x`,
    verdict(c.meetsRequestsTarget),
    fixed(c.imagika.cpuMicrosPerRequest, 1),
    `<= ${c.target.maxCpuMicrosPerRequest}`,
    verdict(c.meetsCpuTarget),
    `${fixed(c.cpuRatio, 2)}x`,
  ]);
}

const COMPARISON_HEADER = [
  "file",
  "req/s Imagika/nginx",
  "target",
  "",
  "Imagika CPU µs/req",
  "target",
  "",
  "CPU/req Imagika/nginx",
];

export function formatColumns(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export function formatMarkdownTable(header: readonly string[], rows: readonly string[][]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map((_, i) => (i < 2 ? "---" : "---:"))), ...rows.map(line)].join("\n");
}

export function formatConsoleTables(comparisons: readonly Comparison[]): string {
  return `${formatColumns(SYSTEM_HEADER, systemRows(comparisons))}\n\n${formatColumns(COMPARISON_HEADER, comparisonRows(comparisons))}`;
}

export function formatMarkdownTables(comparisons: readonly Comparison[]): string {
  return `${formatMarkdownTable(SYSTEM_HEADER, systemRows(comparisons))}\n\n${formatMarkdownTable(COMPARISON_HEADER, comparisonRows(comparisons))}`;
}

/** One row of a cached-hit table: any system, any file. */
export function summaryRow(label: string, s: Summary): string[] {
  return [
    label,
    s.system,
    integer(s.requestsPerSecond),
    `±${fixed((s.requestsPerSecondSpread / 2) * 100, 0)}%`,
    fixed(s.megabytesPerSecond, 0),
    fixed(s.p50Ms, 2),
    fixed(s.p99Ms, 2),
    integer(s.errors),
    fixed(s.cpuMicrosPerRequest, 1),
    fixed(s.serverCoreShare, 2),
    s.serverCoreBusyShare === undefined ? "-" : fixed(s.serverCoreBusyShare, 2),
    `${s.contendedRuns}/${s.runs}`,
    fixed(s.loadGeneratorCoreShare, 2),
    mebibytes(s.peakRssBytes),
  ];
}

export const SUMMARY_HEADER: readonly string[] = SYSTEM_HEADER;

/** A table as aligned console text or as Markdown. */
export function formatTable(header: readonly string[], rows: readonly string[][], isMarkdown: boolean): string {
  return isMarkdown ? formatMarkdownTable(header, rows) : formatColumns(header, rows);
}
