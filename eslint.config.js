// @ts-check
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

/** Module boundaries: each folder may only reach the seams it is allowed to. */
const boundary = (/** @type {string[]} */ patterns, /** @type {string} */ message) => ({
  "no-restricted-imports": /** @type {import("eslint").Linter.RuleEntry} */ ([
    "error",
    { patterns: [{ group: patterns, message }] },
  ]),
});

export default tseslint.config(
  { ignores: ["node_modules/**", "web/dist/**", "images/**", "test-artifacts/**", "bench/results/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["web/**/*.{ts,tsx}"],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ["src/config/**", "src/errors.ts", "src/log.ts"],
    rules: boundary(
      ["../http/*", "../proxy/*", "../cache/*", "../fetcher/*", "../transform/*", "../rate-limit/*"],
      "config, errors and log stand alone",
    ),
  },
  {
    files: ["src/cache/**", "src/fetcher/**", "src/rate-limit/**"],
    rules: boundary(
      ["../http/*", "../transform/*", "../proxy/*"],
      "storage and fetching do not know about HTTP, transforms or the proxy",
    ),
  },
  {
    files: ["src/transform/**"],
    rules: boundary(["../cache/*", "../fetcher/*", "../http/*", "../proxy/*"], "transform only knows sharp and errors"),
  },
  {
    files: ["src/proxy/**"],
    rules: boundary(["../http/*", "sharp"], "proxy orchestrates; it does not speak HTTP or call sharp"),
  },
  {
    files: ["src/http/**"],
    rules: boundary(
      ["sharp", "redis", "../../cache/*", "../cache/*"],
      "http talks to the proxy, not to storage internals",
    ),
  },
  {
    files: ["origin-server/**"],
    rules: boundary(["../src/*", "../src/**"], "the origin server is independent of the proxy"),
  },
  {
    files: ["**/*.js"],
    ...tseslint.configs.disableTypeChecked,
  },
);
