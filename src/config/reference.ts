import { ENV_PREFIX, ORIGIN_ENV_PREFIX, ORIGIN_SETTINGS, PROXY_SETTINGS, SAMPLES_SETTINGS } from "./config.ts";
import { formatMarkdown } from "./settings.ts";

export const BEGIN_MARKER = "<!-- BEGIN GENERATED CONFIG (npm run docs) -->";
export const END_MARKER = "<!-- END GENERATED CONFIG -->";

/** Markdown reference of every command's settings, from the tables that parse them. */
export function renderConfigReference(): string {
  return [
    "### `imagika proxy` (and `imagika start`)",
    "",
    formatMarkdown(PROXY_SETTINGS, ENV_PREFIX),
    "",
    "`imagika start` also takes `--origin-port` (8081), `--dir` (./images), `--origin-latency-ms`, `--origin-bandwidth` and `--sample-count` for the origin and samples it runs.",
    "",
    "### `imagika origin`",
    "",
    formatMarkdown(ORIGIN_SETTINGS, ORIGIN_ENV_PREFIX),
    "",
    "### `imagika samples`",
    "",
    formatMarkdown(SAMPLES_SETTINGS, "IMAGIKA_SAMPLES_"),
  ].join("\n");
}

/** Replaces the text between the markers (markers kept). */
export function replaceGenerated(document: string, generated: string): string {
  const begin = document.indexOf(BEGIN_MARKER);
  const end = document.indexOf(END_MARKER);
  if (begin < 0 || end < begin) throw new Error("docs/operations.md lacks the generated-config markers");
  return `${document.slice(0, begin + BEGIN_MARKER.length)}\n\n${generated}\n\n${document.slice(end)}`;
}
