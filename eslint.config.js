// @ts-check
import { dirname, relative, resolve, sep } from "node:path";
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

const REPO_ROOT = import.meta.dirname;

/*
 * Module boundaries. A part is a folder of src/ ("src/cache"), a file at its root ("src/ip.ts"), a top-level folder
 * ("origin-server") or a package ("sharp"); an import is checked by the part it resolves to, however deep either file
 * sits, and dynamic import() and re-exports count. What a row does not forbid is allowed.
 *
 *   config, errors, log and the shared leaves    import no other part but config (for their settings types)
 *   memory (the process's memory budget)         config and errors only: caches, transform and proxy use it
 *   cache, fetcher, rate-limit                   not http, transform, proxy
 *   transform                                    not cache, fetcher, http, proxy
 *   proxy                                        not http, sharp
 *   http                                         not sharp, redis, the cache's internals
 *   every part above                             not the wiring (app, app-metrics, cli, main, scale-out, cluster)
 *   origin-server, web                           nothing from src/ (web talks to the proxy over HTTP only)
 *   app, cli, main                               anything
 * A new folder or root module of src/ is an error until it has a row.
 */
const FOLDERS = ["config", "http", "proxy", "cache", "fetcher", "transform", "rate-limit", "memory"].map(
  (f) => `src/${f}`,
);
/** Root modules that build or connect parts; only each other and the entry points import them. */
const WIRING = ["app.ts", "app-metrics.ts", "cli.ts", "main.ts", "scale-out.ts", "cluster.ts"].map((f) => `src/${f}`);
/** Root modules every part may use: they import no other part. */
const LEAVES = ["errors.ts", "log.ts", "image-format.ts", "ip.ts", "metrics.ts", "cluster-stats.ts"].map(
  (f) => `src/${f}`,
);
const ALL_SRC = [...FOLDERS, ...WIRING, ...LEAVES];
const except = (/** @type {string[]} */ parts, /** @type {string[]} */ allowed) =>
  parts.filter((p) => !allowed.includes(p));

/** @type {Record<string, { forbidden: string[], why: string }>} */
const BOUNDARIES = {
  "src/config": { forbidden: except(ALL_SRC, ["src/config"]), why: "config stands alone" },
  "src/memory": {
    forbidden: except(ALL_SRC, ["src/memory", "src/config", "src/errors.ts"]),
    why: "the memory budget is shared by caches, transforms and the proxy; it knows none of them",
  },
  ...Object.fromEntries(
    LEAVES.map((leaf) => [
      leaf,
      { forbidden: except(ALL_SRC, ["src/config", leaf]), why: "errors, log and the shared leaves stand alone" },
    ]),
  ),
  ...Object.fromEntries(
    ["src/cache", "src/fetcher", "src/rate-limit"].map((part) => [
      part,
      {
        forbidden: ["src/http", "src/transform", "src/proxy", ...WIRING],
        why: "storage and fetching do not know about HTTP, transforms or the proxy",
      },
    ]),
  ),
  "src/transform": {
    forbidden: ["src/cache", "src/fetcher", "src/http", "src/proxy", ...WIRING],
    why: "transform only knows sharp and errors",
  },
  "src/proxy": {
    forbidden: ["src/http", "sharp", ...WIRING],
    why: "proxy orchestrates; it does not speak HTTP or call sharp",
  },
  "src/http": {
    forbidden: ["sharp", "redis", "src/cache", ...WIRING],
    why: "http talks to the proxy, not to storage internals",
  },
  "src/cluster.ts": {
    forbidden: except(FOLDERS, ["src/config"]).concat(except(WIRING, ["src/cluster.ts"])),
    why: "cluster.ts shares metrics and stats between workers; it knows no part of the request path",
  },
  "src/app-metrics.ts": {
    forbidden: ["src/http", "src/app.ts", "src/cli.ts", "src/main.ts"],
    why: "app-metrics.ts reads the parts' counters for app.ts; it does not speak HTTP",
  },
  "src/scale-out.ts": {
    forbidden: ["src/http", "src/app.ts", "src/cli.ts", "src/main.ts", "src/cluster.ts"],
    why: "scale-out.ts builds the shared tiers for app.ts; it does not speak HTTP",
  },
  ...Object.fromEntries(
    ["src/app.ts", "src/cli.ts", "src/main.ts"].map((entry) => [entry, { forbidden: [], why: "" }]),
  ),
  "origin-server": { forbidden: ["src", "web"], why: "the origin server is independent of the proxy" },
  web: { forbidden: ["src", "origin-server"], why: "the frontend talks to the proxy over HTTP only" },
};

/** The part a file belongs to: `src/<folder>`, `src/<file>` at the root of src/, or the top-level folder. */
function partOfFile(/** @type {string} */ file) {
  const segments = relative(REPO_ROOT, file).split(sep);
  if (segments[0] !== "src" || segments.length < 2) return segments[0] ?? "";
  return `src/${segments[1]}`;
}

/** The part an import specifier reaches from `file`; undefined for node builtins. */
function partOfImport(/** @type {string} */ file, /** @type {string} */ specifier) {
  if (specifier.startsWith(".")) return partOfFile(resolve(dirname(file), specifier));
  if (specifier.startsWith("node:")) return undefined;
  const segments = specifier.split("/");
  return specifier.startsWith("@") ? segments.slice(0, 2).join("/") : segments[0];
}

/** @type {import("eslint").Rule.RuleModule} */
const moduleBoundaries = {
  meta: {
    type: "problem",
    docs: { description: "Keeps each part of the proxy to the imports its layer allows" },
    schema: [],
  },
  create(context) {
    const from = partOfFile(context.filename);
    const boundary = BOUNDARIES[from];
    if (!boundary) {
      if (!from.startsWith("src/")) return {};
      const message = `${from} is in no row of the module boundaries (eslint.config.js): add it there`;
      return { Program: (node) => context.report({ node, message }) };
    }
    /** @param {{ source?: unknown }} node */
    const check = (node) => {
      const source = /** @type {import("estree").Node | null | undefined} */ (node.source);
      if (source?.type !== "Literal" || typeof source.value !== "string") return;
      const to = partOfImport(context.filename, source.value);
      if (to === undefined) return;
      if (boundary.forbidden.some((part) => to === part || to.startsWith(`${part}/`))) {
        context.report({ node: source, message: `${from} must not import ${to} ('${source.value}'): ${boundary.why}` });
      }
    };
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
    };
  },
};

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
    files: ["src/**/*.ts", "origin-server/**/*.ts", "web/**/*.{ts,tsx}"],
    plugins: { imagika: { rules: { "module-boundaries": moduleBoundaries } } },
    rules: { "imagika/module-boundaries": "error" },
  },
  {
    files: ["**/*.js"],
    ...tseslint.configs.disableTypeChecked,
  },
);
