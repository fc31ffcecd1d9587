import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { App, AppOptions } from "./app.ts";
import { buildConfig, ENV_PREFIX, ORIGIN_ENV_PREFIX, ORIGIN_SETTINGS, SAMPLES_SETTINGS } from "./config/config.ts";
import { PROXY_SETTINGS } from "./config/proxy-settings.ts";
import type { Config } from "./config/config.ts";
import { int, text } from "./config/parsers.ts";
import { ConfigError, formatHelp, loadSettings, setting } from "./config/settings.ts";
import { runWorkers, shouldForkWorkers } from "./cluster/workers.ts";
import { signImageUrl } from "./http/signature.ts";
import { createOptionRules } from "./transform/options.ts";
import { generateSamples, hasImages } from "../origin-server/samples.ts";
import { startOriginServer } from "../origin-server/server.ts";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

const COMMANDS: Record<string, string> = {
  start: "Generate samples if missing, build the frontend, run the origin (8081) and the proxy (8080) together",
  proxy: "Run the image proxy",
  origin: "Serve a directory of originals over HTTP",
  samples: "Generate the deterministic sample library of 4K originals",
  sign: "Print a signed URL: imagika sign '/img/photo.jpg?w=800&f=auto' --signing-key <key>",
};

const SIGN_SETTINGS = {
  signingKeys: PROXY_SETTINGS.signingKeys,
  expiresIn: setting({
    flag: "expires-in",
    env: "SIGN_EXPIRES_IN",
    parse: int(0, 10 * 365 * 86_400),
    default: 0,
    help: "Seconds until the URL expires (adds exp=; 0 = never)",
  }),
  baseUrl: setting({
    flag: "base-url",
    env: "SIGN_BASE_URL",
    parse: text({ allowEmpty: true }),
    default: "",
    help: "Prefix for the printed URL, e.g. https://img.example.com",
  }),
};

function mainHelp(): string {
  const lines = [
    "Usage: imagika <command> [options]",
    "",
    "Imagika: a fast, safe image proxy for high-resolution originals.",
    "",
    "Commands:",
  ];
  for (const [name, text] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)}${text}`);
  lines.push("", "Run 'imagika <command> --help' for the options of a command.");
  return lines.join("\n");
}

/** `start` adds its own flags to the proxy's; origin latency/bandwidth/dir go to the origin it starts. */
const START_SETTINGS = {
  ...PROXY_SETTINGS,
  originPort: { ...ORIGIN_SETTINGS.port, flag: "origin-port", env: "ORIGIN_PORT" },
  dir: {
    ...ORIGIN_SETTINGS.dir,
    flag: "dir",
    env: "DIR",
    help: "Directory of originals (samples are generated here when it is empty)",
  },
  latencyMs: { ...ORIGIN_SETTINGS.latencyMs, flag: "origin-latency-ms", env: "ORIGIN_LATENCY_MS" },
  bandwidth: { ...ORIGIN_SETTINGS.bandwidth, flag: "origin-bandwidth", env: "ORIGIN_BANDWIDTH" },
  sampleCount: { ...SAMPLES_SETTINGS.count, flag: "sample-count", env: "SAMPLE_COUNT" },
};

export interface CliDeps {
  readonly createApp: (config: Config, options?: AppOptions) => Promise<App>;
}

/** Runs one subcommand; exits non-zero with one message naming every bad setting. */
export async function runCli(argv: readonly string[], deps: CliDeps): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    console.log(mainHelp());
    return;
  }
  if (!(command in COMMANDS)) {
    console.error(`imagika: unknown command '${command}'\n\n${mainHelp()}`);
    process.exitCode = 2;
    return;
  }
  const wantsHelp = rest.includes("--help") || rest.includes("-h");
  try {
    switch (command) {
      case "proxy":
        if (wantsHelp)
          return void console.log(formatHelp("imagika proxy [options]", COMMANDS.proxy!, PROXY_SETTINGS, ENV_PREFIX));
        return await runProxy(rest, deps);
      case "origin":
        if (wantsHelp)
          return void console.log(
            formatHelp("imagika origin [options]", COMMANDS.origin!, ORIGIN_SETTINGS, ORIGIN_ENV_PREFIX),
          );
        return await runOrigin(rest);
      case "samples":
        if (wantsHelp)
          return void console.log(
            formatHelp("imagika samples [options]", COMMANDS.samples!, SAMPLES_SETTINGS, "IMAGIKA_SAMPLES_"),
          );
        return await runSamples(rest);
      case "sign":
        if (wantsHelp)
          return void console.log(
            formatHelp("imagika sign <'/img/<path>?<options>'> [options]", COMMANDS.sign!, SIGN_SETTINGS, ENV_PREFIX),
          );
        return runSign(rest);
      case "start":
        if (wantsHelp)
          return void console.log(formatHelp("imagika start [options]", COMMANDS.start!, START_SETTINGS, ENV_PREFIX));
        return await runStart(rest, deps);
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`imagika ${command}: invalid configuration\n${error.problems.map((p) => `  ${p}`).join("\n")}`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
}

/**
 * SIGTERM/SIGINT handling, installed before anything starts: a signal that arrives while the servers are still
 * starting (as PID 1 in a container, Node drops it when no handler exists yet) is remembered, and the servers are
 * closed as soon as `started` hands over their stop function. A second signal exits at once.
 */
function handleSignals(): { started(stop: () => Promise<void>): void } {
  let stop: (() => Promise<void>) | undefined;
  let isStopping = false;
  const run = (): void => {
    stop?.().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  const handler = (signal: NodeJS.Signals): void => {
    if (isStopping) process.exit(1); // second Ctrl-C: do not wait any longer
    isStopping = true;
    console.error(`\nimagika: ${signal} received, shutting down`);
    run();
  };
  // bin/imagika.js's "exit while loading" handlers stand down from here (removing listeners could drop a signal
  // already on its way to them).
  (globalThis as Record<symbol, unknown>)[Symbol.for("imagika.signalsOwned")] = true;
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
  return {
    started: (stopServers) => {
      stop = stopServers;
      if (isStopping) run();
    },
  };
}

function runSign(argv: readonly string[]): void {
  const { values, positionals } = loadSettings(SIGN_SETTINGS, { env: process.env, argv, envPrefix: ENV_PREFIX });
  const problems: string[] = [];
  if (positionals.length !== 1) problems.push("give exactly one URL path to sign, e.g. '/img/photo.jpg?w=800'");
  const key = values.signingKeys[0];
  if (key === undefined) problems.push("--signing-key (or IMAGIKA_SIGNING_KEY) is required");
  if (problems.length > 0 || key === undefined) throw new ConfigError(problems);
  const expiresAt = values.expiresIn > 0 ? Math.floor(Date.now() / 1000) + values.expiresIn : undefined;
  let signed: string;
  try {
    signed = signImageUrl(positionals[0]!, key, expiresAt); // one positional, checked above
  } catch (error) {
    throw new ConfigError([error instanceof Error ? error.message : String(error)]);
  }
  console.log(`${values.baseUrl.replace(/\/$/, "")}${signed}`);
}

async function runProxy(argv: readonly string[], deps: CliDeps): Promise<void> {
  const { values, positionals } = loadSettings(PROXY_SETTINGS, { env: process.env, argv, envPrefix: ENV_PREFIX });
  if (positionals.length > 0) throw new ConfigError([`unexpected argument '${positionals[0]}'`]);
  const config = buildConfig(values);
  // Checked here too, so a bad preset stops the primary instead of crash-looping its workers.
  createOptionRules(config.imageOptions, config.transform);
  if (shouldForkWorkers(values.workers)) return runWorkers(values.workers);
  const signals = handleSignals();
  const app = await deps.createApp(config);
  signals.started(() => app.close());
}

async function runOrigin(argv: readonly string[]): Promise<void> {
  const { values, positionals } = loadSettings(ORIGIN_SETTINGS, {
    env: process.env,
    argv,
    envPrefix: ORIGIN_ENV_PREFIX,
  });
  if (positionals.length > 0) throw new ConfigError([`unexpected argument '${positionals[0]}'`]);
  if (!existsSync(values.dir))
    throw new ConfigError([`--dir: directory '${values.dir}' does not exist (run 'imagika samples' to create one)`]);
  const signals = handleSignals();
  const origin = await startOriginServer({
    dir: values.dir,
    port: values.port,
    host: values.host,
    latencyMs: values.latencyMs,
    bandwidthBytesPerSecond: values.bandwidth,
  });
  console.log(`imagika origin serving ${resolve(values.dir)} at ${origin.url}`);
  signals.started(() => origin.close());
}

async function runSamples(argv: readonly string[]): Promise<void> {
  const { values, positionals } = loadSettings(SAMPLES_SETTINGS, {
    env: process.env,
    argv,
    envPrefix: "IMAGIKA_SAMPLES_",
  });
  if (positionals.length > 0) throw new ConfigError([`unexpected argument '${positionals[0]}'`]);
  await makeSamples(values.dir, values.count, values.seed);
}

async function makeSamples(dir: string, count: number, seed: number): Promise<void> {
  const started = performance.now();
  console.log(`imagika: generating ${count} sample 4K originals in ${resolve(dir)} (seed ${seed})`);
  const { files } = await generateSamples({
    dir,
    count,
    seed,
    onProgress: (done, total, file) => console.log(`  [${done}/${total}] ${file}`),
  });
  console.log(`imagika: ${files.length} originals written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/** Builds web/dist when it is missing or older than the sources under web/. */
async function ensureWebBuilt(): Promise<string | undefined> {
  const webDir = join(REPO_ROOT, "web");
  const dist = join(webDir, "dist");
  const index = join(dist, "index.html");
  if (!existsSync(join(webDir, "index.html"))) return undefined;
  const builtAt = existsSync(index) ? statSync(index).mtimeMs : 0;
  if (builtAt > 0 && newestMtime(join(webDir, "src")) <= builtAt) return dist;
  console.log("imagika: building the frontend (vite build web)");
  const { build } = await import("vite");
  await build({ root: webDir, logLevel: "warn", configFile: join(webDir, "vite.config.ts") });
  return dist;
}

function newestMtime(dir: string): number {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

async function runStart(argv: readonly string[], deps: CliDeps): Promise<void> {
  const { values, positionals } = loadSettings(START_SETTINGS, { env: process.env, argv, envPrefix: ENV_PREFIX });
  if (positionals.length > 0) throw new ConfigError([`unexpected argument '${positionals[0]}'`]);
  if (!(await hasImages(values.dir))) await makeSamples(values.dir, values.sampleCount, SAMPLES_SETTINGS.seed.default);
  const webRoot = values.webRoot !== "" ? values.webRoot : await ensureWebBuilt();
  const signals = handleSignals();
  const origin = await startOriginServer({
    dir: values.dir,
    port: values.originPort,
    host: values.host,
    latencyMs: values.latencyMs,
    bandwidthBytesPerSecond: values.bandwidth,
  });
  const originFromFlags = argv.some((arg) => arg === "--origin" || arg.startsWith("--origin="));
  const config = buildConfig({
    ...values,
    origin:
      originFromFlags || process.env[`${ENV_PREFIX}ORIGIN`] ? values.origin : { kind: "http", baseUrl: origin.url },
    webRoot: webRoot ?? "",
  });
  const app = await deps.createApp(config);
  console.log(
    `\n  Imagika is running\n    gallery + dashboard  ${app.url}/\n    image API            ${app.url}/img/<path>?w=800&f=auto\n    stats                ${app.url}/api/stats\n    origin               ${origin.url}\n\n  Ctrl-C stops everything.\n`,
  );
  signals.started(async () => {
    await app.close();
    await origin.close();
  });
}
