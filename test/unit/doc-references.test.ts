import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MARKDOWN_NAME = /[\w./-]+\.md\b/g;

describe("documents cited in the repository", () => {
  it("exist in the repository: comments and docs never point at files a reader cannot open", () => {
    const tracked = execFileSync("git", ["ls-files"], { cwd: REPO_ROOT, encoding: "utf8" }).split("\n");
    const markdown = new Set(tracked.filter((file) => file.endsWith(".md")).map((file) => basename(file)));
    const cited = tracked
      .filter((file) => /\.(?:ts|tsx|js|md)$/.test(file) && !file.startsWith("bench/results/"))
      .flatMap((file) =>
        [...readFileSync(`${REPO_ROOT}/${file}`, "utf8").matchAll(MARKDOWN_NAME)].map(
          (match) => `${file}: ${match[0]}`,
        ),
      );
    expect(cited.length).toBeGreaterThan(10); // the search finds the real citations (docs/operations.md and so on)
    expect(cited.filter((entry) => !markdown.has(basename(entry.split(": ")[1]!)))).toEqual([]); // "file: name"
  });
});
