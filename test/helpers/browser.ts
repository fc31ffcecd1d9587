import { randomBytes } from "node:crypto";
import { constants, createReadStream, createWriteStream } from "node:fs";
import { access, mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { arch, platform } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { createBrotliDecompress } from "node:zlib";
import { chromium } from "playwright-core";
import type { Browser, LaunchOptions } from "playwright-core";

/**
 * The one place tests find and launch Chromium. By default the headless Chromium shipped inside the npm package
 * `@sparticuz/chromium` (a devDependency: `npm ci` brings it, no apt, no download at run time), decompressed once
 * per install; `IMAGIKA_CHROMIUM=/path/to/chromium` picks another, e.g. Debian's `/usr/bin/chromium`. Nothing here
 * skips: a browser that cannot be found or started throws, and the test that wanted it fails saying why.
 */
export const CHROMIUM_ENV = "IMAGIKA_CHROMIUM";
const PACKAGE = "@sparticuz/chromium";
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** Wiped with node_modules by `npm ci`, so a new package version never meets an old binary. */
const CACHE_DIR = join(REPO_ROOT, "node_modules/.cache/imagika-chromium");

/**
 * No background networking, component updates or sync: without them Chromium keeps trying to reach hosts this
 * machine cannot reach. Not the package's own `args`: those turn off web security and site isolation, which the
 * end-to-end tests must see as a real browser has them.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface ChromiumExecutable {
  readonly path: string;
  /** Where it came from, for messages: `IMAGIKA_CHROMIUM` or `@sparticuz/chromium <version>`. */
  readonly source: string;
}

/** The Chromium the tests use (see the module comment); throws with what to do when there is none. */
export async function findChromium(env: NodeJS.ProcessEnv = process.env): Promise<ChromiumExecutable> {
  const chosen = env[CHROMIUM_ENV];
  if (chosen !== undefined && chosen !== "") {
    await mustBeExecutable(chosen, `${CHROMIUM_ENV}=${chosen}`);
    return { path: chosen, source: CHROMIUM_ENV };
  }
  return packagedChromium();
}

/** Launches the Chromium of findChromium() headless with CHROMIUM_ARGS (plus `options`). */
export async function launchChromium(
  options: LaunchOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<Browser> {
  const { path, source } = await findChromium(env);
  try {
    return await chromium.launch({
      headless: true,
      ...options,
      executablePath: path,
      args: [...CHROMIUM_ARGS, ...(options.args ?? [])],
    });
  } catch (error) {
    throw new Error(`Chromium from ${source} (${path}) did not start: ${String(error)}`, { cause: error });
  }
}

async function mustBeExecutable(path: string, what: string): Promise<void> {
  try {
    if (!(await stat(path)).isFile()) throw new Error("not a file");
    await access(path, constants.X_OK);
  } catch (error) {
    throw new Error(`${what}: not an executable file (${String(error)})`, { cause: error });
  }
}

/**
 * The package ships one brotli-compressed Linux x64 binary (bin/chromium.br, 67 MB → 209 MB): decompressed to a
 * temporary name and renamed, so concurrent test files and an interrupted run never leave a half-written browser.
 * Not the package's executablePath(): it reuses whatever file is at /tmp/chromium, whichever version or state.
 */
async function packagedChromium(): Promise<ChromiumExecutable> {
  const hint =
    `the end-to-end tests need Chromium: \`npm ci\` installs the devDependency ${PACKAGE}, ` +
    `or set ${CHROMIUM_ENV}=/usr/bin/chromium (Debian: apt-get install chromium)`;
  if (platform() !== "linux" || arch() !== "x64") {
    throw new Error(`${PACKAGE} ships Chromium for Linux x64 only (this is ${platform()} ${arch()}): ${hint}`);
  }
  let packageDir: string;
  try {
    packageDir = resolve(dirname(createRequire(import.meta.url).resolve(PACKAGE)), ".."); // <package>/build/index.js
  } catch (error) {
    throw new Error(`${PACKAGE} is not installed: ${hint}`, { cause: error });
  }
  const { version } = JSON.parse(await readFile(join(packageDir, "package.json"), "utf8")) as { version: string };
  const source = `${PACKAGE} ${version}`;
  const path = join(CACHE_DIR, version, "chromium");
  try {
    await access(path, constants.X_OK);
    return { path, source };
  } catch {
    // not decompressed yet for this install
  }
  const compressed = join(packageDir, "bin/chromium.br");
  await mkdir(dirname(path), { recursive: true });
  const partial = `${path}.${process.pid}-${randomBytes(4).toString("hex")}.partial`;
  try {
    await pipeline(
      createReadStream(compressed),
      createBrotliDecompress({ chunkSize: 2 ** 21 }),
      createWriteStream(partial, { mode: 0o755 }),
    );
    await rename(partial, path);
  } catch (error) {
    await rm(partial, { force: true });
    throw new Error(`could not decompress ${compressed}: ${String(error)}; ${hint}`, { cause: error });
  }
  return { path, source };
}
