/** One value at a time; `null` is a gap (no data), not zero. */
export interface ChartPoint {
  readonly atMs: number;
  readonly value: number | null;
}

const WIDTH = 300;
const HEIGHT = 80;
const PAD_TOP = 6;

/**
 * A small time-series line over the last `windowMs`, as plain SVG (no chart library: a 300×80 path is all we need).
 * The y axis starts at 0 and ends at `maxValue`, or at the data's maximum rounded up to a readable step.
 */
export function LineChart({
  points,
  nowMs,
  windowMs,
  label,
  formatValue,
  maxValue,
}: {
  points: readonly ChartPoint[];
  nowMs: number;
  windowMs: number;
  label: string;
  formatValue: (value: number) => string;
  maxValue?: number;
}) {
  const values = points.flatMap((point) => (point.value === null ? [] : [point.value]));
  const top = maxValue ?? niceCeiling(Math.max(0, ...values));
  const x = (atMs: number) => ((atMs - (nowMs - windowMs)) / windowMs) * WIDTH;
  const y = (value: number) => HEIGHT - (Math.min(value, top) / (top || 1)) * (HEIGHT - PAD_TOP);

  const segments: string[] = [];
  let current = "";
  for (const point of points) {
    if (point.value === null) {
      if (current) segments.push(current);
      current = "";
      continue;
    }
    current += `${current ? "L" : "M"}${x(point.atMs).toFixed(1)},${y(point.value).toFixed(1)}`;
  }
  if (current) segments.push(current);
  const path = segments.join("");
  const latest = [...points].reverse().find((point) => point.value !== null)?.value ?? null;
  const minutes = Math.round(windowMs / 60_000);

  return (
    <figure className="chart">
      <figcaption className="chart__caption">
        <span>{label}</span>
        <span className="chart__latest">{latest === null ? "–" : formatValue(latest)}</span>
      </figcaption>
      <svg
        className="chart__svg"
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`${label} over the last ${minutes} minutes; latest ${latest === null ? "none" : formatValue(latest)}, axis top ${formatValue(top)}`}
      >
        {[0.25, 0.5, 0.75].map((share) => (
          <line key={share} className="chart__grid" x1="0" x2={WIDTH} y1={y(top * share)} y2={y(top * share)} />
        ))}
        {path ? <path className="chart__area" d={areaPath(segments, HEIGHT)} /> : null}
        {path ? <path className="chart__line" d={path} /> : null}
      </svg>
      <div className="chart__axis" aria-hidden="true">
        <span>−{minutes} min</span>
        <span>max {formatValue(top)}</span>
        <span>now</span>
      </div>
    </figure>
  );
}

/** Closes each line segment down to the baseline for the soft fill under it. */
function areaPath(segments: readonly string[], baseline: number): string {
  return segments
    .map((segment) => {
      const coords = [...segment.matchAll(/[ML]([\d.-]+),([\d.-]+)/g)];
      const first = coords[0];
      const last = coords[coords.length - 1];
      if (!first || !last) return "";
      return `${segment}L${last[1]},${baseline}L${first[1]},${baseline}Z`;
    })
    .join("");
}

/** 0 → 1, 7 → 10, 13 → 20, 230 → 250: an axis top that reads well. */
export function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 2.5, 5, 10].find((candidate) => candidate * magnitude >= value) ?? 10;
  return step * magnitude;
}
