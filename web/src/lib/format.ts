const BYTE_UNITS = ["B", "kB", "MB", "GB", "TB"] as const;

/** SI bytes, as file managers and DevTools show them: 4_123_456 → "4.1 MB", 999 → "999 B", 12_345 → "12 kB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return "–";
  const sign = bytes < 0 ? "-" : "";
  let value = Math.abs(bytes);
  let unit = 0;
  while (value >= 1000 && unit < BYTE_UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  if (unit === 0) return `${sign}${Math.round(value)} B`;
  // Two significant digits below 10 ("4.1 MB"), whole numbers above ("412 kB"); rounding 999.6 up moves a unit.
  let text = value < 9.95 ? value.toFixed(1) : String(Math.round(value));
  if (text === "1000" && unit < BYTE_UNITS.length - 1) {
    text = "1.0";
    unit += 1;
  }
  return `${sign}${text} ${BYTE_UNITS[unit]}`;
}

/** A 0..1 ratio as a percentage: 0.734 → "73%", with `digits` decimals when asked ("73.4%"). */
export function formatPercent(ratio: number, digits = 0): string {
  if (!Number.isFinite(ratio)) return "–";
  return `${(ratio * 100).toFixed(digits)}%`;
}

/** Milliseconds: 0.42 → "0.42 ms", 12.345 → "12.3 ms", 250 → "250 ms", 1234 → "1.23 s". */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return "–";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${Math.round(ms)} ms`;
  if (ms >= 1) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** Integers with thousands separators: 12345 → "12,345". */
export function formatCount(count: number): string {
  if (!Number.isFinite(count)) return "–";
  return Math.round(count).toLocaleString("en-US");
}

/** Uptime: 42 → "42 s", 125 → "2 min 5 s", 7260 → "2 h 1 min", 90000 → "1 d 1 h". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** "3840 × 2160". */
export function formatDimensions(width: number, height: number): string {
  return `${width} × ${height}`;
}

/** Share saved by delivering `deliveredBytes` instead of `originalBytes`: negative when the variant is larger. */
export function savingRatio(originalBytes: number, deliveredBytes: number): number {
  if (!(originalBytes > 0)) return 0;
  return 1 - deliveredBytes / originalBytes;
}

/** "image/webp" → "WebP"; unknown types are shown as sent. */
export function formatContentType(contentType: string | null): string {
  if (!contentType) return "–";
  const mime = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  const names: Record<string, string> = {
    "image/avif": "AVIF",
    "image/webp": "WebP",
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/svg+xml": "SVG",
    "image/tiff": "TIFF",
  };
  return names[mime] ?? mime;
}
