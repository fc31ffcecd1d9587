import type { ChildProcess } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { rgbaToThumbHash } from "thumbhash";
import { spawnTracked, stopChild } from "./children.ts";
import { placeCommand } from "./placement.ts";
import type { Placement } from "./placement.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const WORKER = resolve(HERE, "bare-sharp-worker.ts");
const REPO_ROOT = resolve(HERE, "../..");

/** The pipeline Imagika runs for `?w=1280&f=webp` (q80), called directly: the floor. Resolves to the output bytes. */
export async function bareSharpWebp(original: Buffer): Promise<number> {
  const out = await sharp(original)
    .rotate()
    .resize({ width: 1280, withoutEnlargement: true })
    .webp({ quality: 80 })
    .toBuffer();
  return out.byteLength;
}

/** Imagika's `?w=1280&f=avif` (q60, 4:2:0) at `effort`, called directly. */
export async function bareSharpAvif(original: Buffer, effort: number): Promise<number> {
  const out = await sharp(original)
    .rotate()
    .resize({ width: 1280, withoutEnlargement: true })
    .avif({ quality: 60, effort, chromaSubsampling: "4:2:0" })
    .toBuffer();
  return out.byteLength;
}

/** Imagika's `?w=400&h=400&gravity=attention&f=webp`: libvips' attention smart crop, called directly. */
export async function bareSharpAttention(original: Buffer): Promise<number> {
  const out = await sharp(original)
    .rotate()
    .resize({ width: 400, height: 400, position: sharp.strategy.attention, withoutEnlargement: true })
    .webp({ quality: 80 })
    .toBuffer();
  return out.byteLength;
}

/** Imagika's `?f=thumbhash`: fit inside 100x100, raw RGBA, rgbaToThumbHash, base64. Resolves to the text's length. */
export async function bareSharpThumbhash(original: Buffer): Promise<number> {
  const { data, info } = await sharp(original)
    .rotate()
    .resize({ width: 100, height: 100, fit: "inside" })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return Buffer.from(rgbaToThumbHash(info.width, info.height, data)).toString("base64").length;
}

export interface BareSharpJob {
  readonly format: "webp" | "avif" | "attention" | "thumbhash";
  readonly avifEffort?: number;
}

/** Runs one job's pipeline on the original; resolves to the output's size in bytes. */
export function runBareSharp(original: Buffer, job: BareSharpJob): Promise<number> {
  switch (job.format) {
    case "webp":
      return bareSharpWebp(original);
    case "avif":
      return bareSharpAvif(original, job.avifEffort ?? 0);
    case "attention":
      return bareSharpAttention(original);
    case "thumbhash":
      return bareSharpThumbhash(original);
  }
}

export interface BareSharpRun {
  readonly ms: number;
  readonly bytes: number;
}

/**
 * The floor in a child process placed like the servers (the runner itself sits on the load generator's core): the
 * servers' transforms and the floor then run on the same core. The two cores of these VMs drift apart by a few per
 * cent (measured: the same pipeline 188-215 ms on core 0 against 186-193 ms on core 1 in one minute), which is as
 * much as the 1.15x target leaves.
 */
export class BareSharpProcess {
  readonly #child: ChildProcess;
  #reply: ((message: unknown) => void) | undefined;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on("message", (message) => this.#reply?.(message));
  }

  static async start(originalPath: string, placement: Placement): Promise<BareSharpProcess> {
    // --no-memory-reducer as the proxy runs: the floor gets no idle-time collections either.
    const [command, args] = placeCommand(
      process.execPath,
      ["--no-memory-reducer", "--import", "tsx", WORKER, originalPath],
      placement,
    );
    const child = spawnTracked(command, args, { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit", "ipc"] });
    const worker = new BareSharpProcess(child);
    await worker.#next(30_000);
    return worker;
  }

  /** One run of the pipeline, timed inside the child. */
  async run(job: BareSharpJob): Promise<BareSharpRun> {
    const reply = this.#next(60_000);
    this.#child.send(job);
    const message = (await reply) as { ms?: number; bytes?: number; error?: string };
    if (message.error !== undefined || message.ms === undefined || message.bytes === undefined)
      throw new Error(`bare sharp worker: ${message.error ?? "bad reply"}`);
    return { ms: message.ms, bytes: message.bytes };
  }

  async stop(): Promise<void> {
    await stopChild(this.#child);
  }

  #next(timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("bare sharp worker did not answer")), timeoutMs);
      const onExit = (): void => reject(new Error("bare sharp worker exited"));
      this.#child.once("exit", onExit);
      this.#reply = (message) => {
        clearTimeout(timer);
        this.#child.off("exit", onExit);
        this.#reply = undefined;
        resolve(message);
      };
    });
  }
}
