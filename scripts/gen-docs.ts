// Regenerates the configuration tables in docs/operations.md from the setting tables, so docs cannot drift.
// `npm run docs`; test/unit/config/docs.test.ts fails when the file is stale.
import { readFileSync, writeFileSync } from "node:fs";
import { renderConfigReference, replaceGenerated } from "../src/config/reference.ts";

const file = new URL("../docs/operations.md", import.meta.url);
const current = readFileSync(file, "utf8");
const next = replaceGenerated(current, renderConfigReference());
if (next !== current) {
  writeFileSync(file, next);
  console.log("docs/operations.md updated");
} else {
  console.log("docs/operations.md is up to date");
}
