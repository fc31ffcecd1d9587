// Regenerates the documentation tables from the definitions they describe, so docs cannot drift: the configuration
// tables in docs/operations.md (from the setting tables) and the error table in README.md (from the error catalogue).
// `npm run docs`; test/unit/config/docs.test.ts and test/unit/errors.test.ts fail when a file is stale.
import { readFileSync, writeFileSync } from "node:fs";
import { renderConfigReference, replaceGenerated } from "../src/config/reference.ts";
import type { GeneratedMarkers } from "../src/config/reference.ts";
import { ERROR_TABLE_MARKERS, renderErrorTable } from "../src/errors.ts";

function regenerate(path: string, generated: string, markers?: GeneratedMarkers): void {
  const file = new URL(`../${path}`, import.meta.url);
  const current = readFileSync(file, "utf8");
  const next = replaceGenerated(current, generated, markers);
  if (next !== current) {
    writeFileSync(file, next);
    console.log(`${path} updated`);
  } else {
    console.log(`${path} is up to date`);
  }
}

regenerate("docs/operations.md", renderConfigReference());
regenerate("README.md", renderErrorTable(), ERROR_TABLE_MARKERS);
