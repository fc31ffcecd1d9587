import { validateHeaderName, validateHeaderValue } from "node:http";

/**
 * Response headers as ready-made `name: value\r\n` lines, for the image route's hot path (Reply.writeHeadLines).
 *
 * Why: an image response carries ~20 headers, most of them the same on every response. Validating and concatenating
 * each on every response cost ~10 µs of CPU per request under node:http (82.1 against 70.6 µs in interleaved wrk runs
 * of a server sending the same 20 headers; docs/benchmarks.md, session 6). The fixed ones are rendered and validated
 * once here; the per-request ones are our own templates and numbers.
 */

/** Renders header pairs as lines, validating each name and value as node:http would (throws on CR, LF, NUL...). */
export function renderHeaderLines(pairs: readonly string[]): string {
  let lines = "";
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const name = pairs[i]!; // i + 1 < length
    const value = pairs[i + 1]!;
    validateHeaderName(name);
    validateHeaderValue(name, value);
    lines += `${name}: ${value}\r\n`;
  }
  return lines;
}
