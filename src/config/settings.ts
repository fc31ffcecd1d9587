import { parseArgs } from "node:util";
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
export type SettingValues<S extends SettingTable> = { readonly [K in keyof S]: S[K] extends Setting<infer T> ? T : never };

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
  const problems: string[] = [];
  const argv = expandBareFlags(table, options.argv);
  const parseOptions: Record<string, { type: "string"; multiple: true }> = {};
  for (const spec of Object.values(table)) parseOptions[spec.flag] = { type: "string", multiple: true };
  let flags: Record<string, string[] | undefined> = {};
  let positionals: string[] = [];
  try {
    const parsed = parseArgs({ args: [...argv], options: parseOptions, allowPositionals: true, strict: true });
    flags = parsed.values as Record<string, string[] | undefined>;
    positionals = parsed.positionals;
  } catch (error) {
    problems.push(error instanceof Error ? error.message.split("\n")[0]! : String(error)); // first line is the useful one
  }

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
    else problems.push(`${source}: expected ${result.expected}, got '${raw}'`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { values: values as SettingValues<S>, positionals };
}

function expandBareFlags(table: SettingTable, argv: readonly string[]): string[] {
  const bare = new Map<string, string>();
  for (const spec of Object.values(table)) if (spec.bareValue !== undefined) bare.set(`--${spec.flag}`, spec.bareValue);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!; // i < argv.length
    const value = bare.get(arg);
    const next = argv[i + 1];
    if (value !== undefined && (next === undefined || next.startsWith("-"))) out.push(`${arg}=${value}`);
    else out.push(arg);
  }
  return out;
}

function formatDefault(spec: Setting<unknown>): string {
  if (spec.defaultLabel !== undefined) return spec.defaultLabel;
  const value = spec.default;
  if (value === undefined || value === "") return "(none)";
  if (Array.isArray(value)) return value.length === 0 ? "(none)" : value.join(",");
  return String(value);
}

/** `--help` text for a command. */
export function formatHelp(usage: string, description: string, table: SettingTable, envPrefix: string): string {
  const lines = [`Usage: ${usage}`, "", description, "", "Options:"];
  for (const spec of Object.values(table)) {
    lines.push(`  --${spec.flag} <value>`.padEnd(34) + `${spec.help} [default: ${formatDefault(spec)}; env ${envPrefix}${spec.env}]`);
  }
  lines.push("  --help".padEnd(34) + "Show this help");
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
