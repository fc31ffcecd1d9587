import { ENV_PREFIX, ORIGIN_ENV_PREFIX, ORIGIN_SETTINGS, SAMPLES_SETTINGS } from "./config.ts";
import { PROXY_SETTINGS } from "./proxy-settings.ts";
import { formatMarkdown } from "./settings.ts";

/** The comments around a generated part of a Markdown document. */
export interface GeneratedMarkers {
  readonly begin: string;
  readonly end: string;
}

export const CONFIG_MARKERS: GeneratedMarkers = {
  begin: "<!-- BEGIN GENERATED CONFIG (npm run docs) -->",
  end: "<!-- END GENERATED CONFIG -->",
};

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
export function replaceGenerated(document: string, generated: string, markers = CONFIG_MARKERS): string {
  const begin = document.indexOf(markers.begin);
  const end = document.indexOf(markers.end);
  if (begin < 0 || end < begin) throw new Error(`the document lacks the markers ${markers.begin} ... ${markers.end}`);
  return `${document.slice(0, begin + markers.begin.length)}\n\n${generated}\n\n${document.slice(end)}`;
}
