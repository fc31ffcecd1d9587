// @ts-check
import { dirname, relative, resolve, sep } from "node:path";
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

const REPO_ROOT = import.meta.dirname;

/*
 * Module boundaries. A part is a folder of src/ ("src/cache"), a file at its root ("src/errors.ts"), a file of a folder
 * whose files are parts of their own ("src/cluster/scale-out.ts"), a top-level folder ("origin-server") or a package
 * ("sharp"); an import is checked by the part it resolves to, however deep either file sits, and dynamic import() and
 * re-exports count. What a row does not forbid is allowed.
 *
 *   config, errors.ts, observability, shared     import no other part but config (for their settings types)
 *   memory (the process's memory budget)         config and errors only: caches, transform and proxy use it
 *   cache, fetcher, rate-limit                   not http, transform, proxy
 *   transform                                    not cache, fetcher, http, proxy
 *   proxy                                        not http, sharp
 *   http                                         not sharp, redis, the cache's internals
 *   every part above                             not the wiring (app, app-metrics, cli, main, cluster/)
 *   cluster/workers                              no folder but config (the leaves are allowed), no wiring but
 *                                                cluster-stats: it knows no part of the request path
 *   cluster/cluster-stats                        no other part but config, as a leaf
 *   cluster/scale-out, app-metrics               not http, app, cli, main (scale-out not workers either)
 *   origin-server, web                           nothing from src/ (web talks to the proxy over HTTP only)
 *   app, cli, main                               anything
 * A new folder or root module of src/, or a new file of src/cluster/, is an error until it has a row.
 */
const FOLDERS = ["config", "http", "proxy", "cache", "fetcher", "transform", "rate-limit", "memory"].map(
  (f) => `src/${f}`,
);
/** Folders of src/ whose files are each a part of their own, with its own row. */
const SPLIT_FOLDERS = ["src/cluster"];
/** src/cluster/: --workers N under node:cluster, the stats merged across workers, the disk and Redis tiers. */
const CLUSTER = ["workers.ts", "cluster-stats.ts", "scale-out.ts"].map((f) => `src/cluster/${f}`);
/** Modules that build or connect parts; only each other and the entry points import them. */
const WIRING = [...["app.ts", "app-metrics.ts", "cli.ts", "main.ts"].map((f) => `src/${f}`), ...CLUSTER];
/** What every part may use: they import no other part. */
const LEAVES = ["src/errors.ts", "src/observability", "src/shared"];
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
      { forbidden: except(ALL_SRC, ["src/config", leaf]), why: "errors, observability and shared stand alone" },
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
    why: "transform knows sharp, its settings and the option vocabulary (url/), not caches, origins, HTTP or the proxy",
  },
  "src/proxy": {
    forbidden: ["src/http", "sharp", ...WIRING],
    why: "proxy orchestrates; it does not speak HTTP or call sharp",
  },
  "src/http": {
    forbidden: ["sharp", "redis", "src/cache", ...WIRING],
    why: "http talks to the proxy, not to storage internals",
  },
  "src/cluster/workers.ts": {
    forbidden: except(FOLDERS, ["src/config"]).concat(
      except(WIRING, ["src/cluster/workers.ts", "src/cluster/cluster-stats.ts"]),
    ),
    why: "cluster/workers.ts shares metrics and stats between workers; it knows no part of the request path",
  },
  "src/cluster/cluster-stats.ts": {
    forbidden: except(ALL_SRC, ["src/config", "src/cluster/cluster-stats.ts"]),
    why: "cluster/cluster-stats.ts merges plain stats snapshots; it stands alone",
  },
  "src/cluster/scale-out.ts": {
    forbidden: ["src/http", "src/app.ts", "src/cli.ts", "src/main.ts", "src/cluster/workers.ts"],
    why: "cluster/scale-out.ts builds the shared tiers for app.ts; it does not speak HTTP",
  },
  "src/app-metrics.ts": {
    forbidden: ["src/http", "src/app.ts", "src/cli.ts", "src/main.ts"],
    why: "app-metrics.ts reads the parts' counters for app.ts; it does not speak HTTP",
  },
  ...Object.fromEntries(
    ["src/app.ts", "src/cli.ts", "src/main.ts"].map((entry) => [entry, { forbidden: [], why: "" }]),
  ),
  "origin-server": { forbidden: ["src", "web"], why: "the origin server is independent of the proxy" },
  web: { forbidden: ["src", "origin-server"], why: "the frontend talks to the proxy over HTTP only" },
};

/**
 * The part a file belongs to: `src/<folder>`, `src/<file>` at the root of src/, `src/<folder>/<file>` in a split
 * folder, or the top-level folder.
 */
function partOfFile(/** @type {string} */ file) {
  const segments = relative(REPO_ROOT, file).split(sep);
  if (segments[0] !== "src" || segments.length < 2) return segments[0] ?? "";
  const folder = `src/${segments[1]}`;
  return SPLIT_FOLDERS.includes(folder) && segments.length > 2 ? `${folder}/${segments[2]}` : folder;
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
