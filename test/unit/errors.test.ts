import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { replaceGenerated } from "../../src/config/reference.ts";
import { ERRORS, ERROR_TABLE_MARKERS, ProxyError, renderErrorTable } from "../../src/errors.ts";

describe("error catalogue", () => {
  it("gives each error its code's status and headers, and lets an error add its own", () => {
    const unauthorized = new ProxyError("UNAUTHORIZED", "no token");
    expect([unauthorized.status, unauthorized.headers]).toEqual([
      401,
      { "www-authenticate": 'Bearer realm="imagika-admin"' },
    ]);
    const range = new ProxyError("RANGE_NOT_SATISFIABLE", "too far", { headers: { "content-range": "bytes */10" } });
    expect([range.status, range.headers]).toEqual([416, { "content-range": "bytes */10" }]);
  });

  it("is README.md's error table, row for row (run npm run docs when this fails)", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    expect(replaceGenerated(readme, renderErrorTable(), ERROR_TABLE_MARKERS)).toBe(readme);
    for (const code of Object.keys(ERRORS)) expect(readme).toContain(`| \`${code}\``);
  });
});
