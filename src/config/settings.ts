import type { Parser } from "./parsers.ts";

/**
 * One setting: its flag, its environment variable (after the command's prefix), default and help.
 * Tables of these drive flag parsing, `--help` and docs/operations.md, so the three cannot drift apart.
 */
export interface Setting<T> {
  readonly flag: string;
  readonly env: string;
  readonly parse: Parser<T>;
  readonly default: T;
  readonly help: string;
  /** Shown instead of the default value in help and docs (e.g. "number of cores"). */
  readonly defaultLabel?: string;
  /** A bare `--flag` means this value (boolean-ish settings that also take a value). */
  readonly bareValue?: string;
  readonly group?: string;
}

export type SettingTable = Record<string, Setting<unknown>>;
export type SettingValues<S extends SettingTable> = {
  readonly [K in keyof S]: S[K] extends Setting<infer T> ? T : never;
};

export function setting<T>(spec: Setting<T>): Setting<T> {
  return spec;
}

/** Thrown when flags or environment variables are invalid; the message names every bad setting. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(problems.join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

export interface LoadOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly argv: readonly string[];
  /** e.g. "IMAGIKA_" or "IMAGIKA_ORIGIN_". */
  readonly envPrefix: string;
}

/** Resolves a table: flag > environment > default. Collects every problem and throws one ConfigError. */
export function loadSettings<S extends SettingTable>(
  table: S,
  options: LoadOptions,
): { values: SettingValues<S>; positionals: string[] } {
  const { flags, positionals, problems } = parseFlags(table, options.argv);
  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(table)) {
    const fromFlag = flags[spec.flag];
    const envName = options.envPrefix + spec.env;
    const fromEnv = options.env[envName];
    let source: string | undefined;
    let raw: string | undefined;
    if (fromFlag !== undefined && fromFlag.length > 0) {
      if (fromFlag.length > 1) problems.push(`--${spec.flag}: given ${fromFlag.length} times; give it once`);
      raw = fromFlag[fromFlag.length - 1];
      source = `--${spec.flag}`;
    } else if (fromEnv !== undefined && fromEnv !== "") {
      raw = fromEnv;
      source = envName;
    }
    if (raw === undefined || source === undefined) {
      values[key] = spec.default;
      continue;
    }
    const result = spec.parse(raw);
    if (result.ok) values[key] = result.value;
    else problems.push(`${source}: expected ${result.expected}, got '${withoutUrlPasswords(raw)}'`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { values: values as SettingValues<S>, positionals };
}

/** The value as an error may echo it: the password of any URL in it (redis://user:secret@host) masked. */
function withoutUrlPasswords(raw: string): string {
  return raw.replace(/(\/\/[^/:@\s]*:)[^@/\s]*@/g, "$1***@");
}

/**
 * Splits argv into flag values and positionals: `--name value`, `--name=value`, and a bare `--name` for settings
 * with a bareValue. Hand-written rather than node:util parseArgs because parseArgs stops at the first problem and
 * refuses values that start with "-" (`--rate-limit -3`), and we must name every bad setting at once.
 */
function parseFlags(
  table: SettingTable,
  argv: readonly string[],
): { flags: Record<string, string[]>; positionals: string[]; problems: string[] } {
  const specs = new Map<string, Setting<unknown>>();
  for (const spec of Object.values(table)) specs.set(spec.flag, spec);
  const flags: Record<string, string[]> = {};
  const positionals: string[] = [];
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!; // i < argv.length
    if (!arg.startsWith("--") || arg === "--") {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = specs.get(name);
    if (!spec) {
      problems.push(`--${name}: unknown option`);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (spec.bareValue !== undefined && (argv[i + 1] === undefined || argv[i + 1]!.startsWith("--")))
      value = spec.bareValue;
    else if (i + 1 < argv.length) value = argv[++i];
    if (value === undefined) {
      problems.push(`--${name}: expected a value`);
      continue;
    }
    (flags[spec.flag] ??= []).push(value);
  }
  return { flags, positionals, problems };
}

function formatDefault(spec: Setting<unknown>): string {
  if (spec.defaultLabel !== undefined) return spec.defaultLabel;
  const value = spec.default;
  if (value === undefined || value === "") return "(none)";
  if (Array.isArray(value)) return value.length === 0 ? "(none)" : value.join(",");
  return typeof value === "string" || typeof value === "number" || typeof value === "boolean"
    ? String(value)
    : JSON.stringify(value);
}

/** `--help` text for a command. */
export function formatHelp(usage: string, description: string, table: SettingTable, envPrefix: string): string {
  const lines = [`Usage: ${usage}`, "", description, "", "Options:"];
  const specs = Object.values(table);
  // The description column starts two spaces after the longest flag, so no flag runs into its text.
  const width = Math.max("  --help".length, ...specs.map((spec) => `  --${spec.flag} <value>`.length)) + 2;
  for (const spec of specs) {
    lines.push(
      `  --${spec.flag} <value>`.padEnd(width) +
        `${spec.help} [default: ${formatDefault(spec)}; env ${envPrefix}${spec.env}]`,
    );
  }
  lines.push("  --help".padEnd(width) + "Show this help");
  return lines.join("\n");
}

/** Markdown table of a command's settings for docs/operations.md. */
export function formatMarkdown(table: SettingTable, envPrefix: string): string {
  const rows = ["| flag | environment | default | meaning |", "| --- | --- | --- | --- |"];
  for (const spec of Object.values(table)) {
    rows.push(`| \`--${spec.flag}\` | \`${envPrefix}${spec.env}\` | \`${formatDefault(spec)}\` | ${spec.help} |`);
  }
  return rows.join("\n");
}
