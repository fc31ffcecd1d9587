/** One bar: a ratio Imagika / peer, e.g. 0.52 (requests/s) or 1.07 (latency). */
export interface Bar {
  readonly label: string;
  readonly value: number;
  /** Shown after the value, e.g. "27.1k vs 52.3k req/s". */
  readonly detail?: string;
}

export interface Chart {
  readonly title: string;
  /** How to read the ratio, e.g. "higher is better for Imagika". */
  readonly subtitle: string;
  readonly bars: readonly Bar[];
  /** A dashed line at a target ratio, e.g. 0.65. */
  readonly target?: { readonly value: number; readonly label: string };
  /** Whether a bar above 1 is good for Imagika (throughput) or bad (latency, CPU). */
  readonly isHigherBetter: boolean;
}

const escapeXml = (text: string): string =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

/**
 * A horizontal bar chart as standalone SVG (no dependency, no script, no external font): one bar per peer, a solid
 * line at 1.0 (parity) and a dashed one at the target. Bars on Imagika's good side of 1 are green, the others orange.
 */
export function renderBarChart(chart: Chart): string {
  const width = 840;
  const labelWidth = 230;
  const plotWidth = 360;
  const rowHeight = 30;
  const top = 58;
  const height = top + chart.bars.length * rowHeight + 34;
  // Ratios beyond OFF_SCALE (ipx re-transforming: thousands) would flatten every other bar: they are drawn to the
  // edge, marked "off scale", with their value printed.
  const OFF_SCALE = 4;
  const finite = chart.bars.map((b) => b.value).filter((v) => Number.isFinite(v) && v <= OFF_SCALE);
  const maxValue = Math.max(1.2, chart.target?.value ?? 0, ...finite) * 1.08;
  const x = (v: number): number => labelWidth + (Math.min(Math.max(0, v), maxValue) / maxValue) * plotWidth;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="13">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="24" font-size="16" font-weight="600" fill="#111">${escapeXml(chart.title)}</text>`,
    `<text x="16" y="44" fill="#555">${escapeXml(chart.subtitle)}</text>`,
  ];
  chart.bars.forEach((bar, i) => {
    const y = top + i * rowHeight;
    const isGood = chart.isHigherBetter ? bar.value >= 1 : bar.value <= 1;
    parts.push(
      `<text x="${labelWidth - 10}" y="${y + 19}" text-anchor="end" fill="#222">${escapeXml(bar.label)}</text>`,
    );
    if (Number.isFinite(bar.value)) {
      parts.push(
        `<rect x="${labelWidth}" y="${y + 6}" width="${(x(bar.value) - labelWidth).toFixed(1)}" height="18" rx="2" fill="${isGood ? "#2e9e5b" : "#e07b22"}"/>`,
        `<text x="${(x(bar.value) + 6).toFixed(1)}" y="${y + 19}" fill="#111">${bar.value >= 100 ? bar.value.toFixed(0) : bar.value.toFixed(2)}x${bar.value > maxValue ? " (off scale)" : ""}${bar.detail ? `  ${escapeXml(bar.detail)}` : ""}</text>`,
      );
    } else {
      parts.push(
        `<text x="${labelWidth + 6}" y="${y + 19}" fill="#777">n/a${bar.detail ? `  ${escapeXml(bar.detail)}` : ""}</text>`,
      );
    }
  });
  const bottom = top + chart.bars.length * rowHeight;
  parts.push(
    `<line x1="${x(1).toFixed(1)}" y1="${top - 4}" x2="${x(1).toFixed(1)}" y2="${bottom + 4}" stroke="#111" stroke-width="1.5"/>`,
    `<text x="${x(1).toFixed(1)}" y="${bottom + 20}" text-anchor="middle" fill="#111">1.0 = parity</text>`,
  );
  if (chart.target) {
    const tx = x(chart.target.value).toFixed(1);
    parts.push(
      `<line x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${bottom + 4}" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="5 4"/>`,
      `<text x="${tx}" y="${bottom + 20}" text-anchor="${chart.target.value < 1 ? "end" : "start"}" fill="#c0392b">${escapeXml(chart.target.label)}</text>`,
    );
  }
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
