import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";
import sharp from "sharp";
import type { Metadata } from "sharp";
import type { TransformConfig } from "../config/config.ts";
import { isProxyError, ProxyError } from "../errors.ts";
import { sniffImageFormat } from "../image-format.ts";
import type { ImageFormat } from "../image-format.ts";
import { WorkLimiter } from "./limiter.ts";
import type { OutputFormat } from "./negotiate.ts";
import type { TransformOptions } from "./options.ts";
import { colour } from "./steps/colour.ts";
import { format as encode } from "./steps/format.ts";
import { orient } from "./steps/orient.ts";
import { resize } from "./steps/resize.ts";
import type { EncodedFormat, RenderPlan, TransformStep } from "./steps/step.ts";
import { resolveTargetSize } from "./target-size.ts";
import { estimateWorkingSet, expectedOutputSize } from "./working-set.ts";
import type { Lease, MemoryBudget } from "../memory/memory-budget.ts";

/** Read top to bottom: what happens to every variant, in order. */
export const STEPS: readonly TransformStep[] = [orient, resize, colour, encode];

export interface TransformResult {
  readonly body: Buffer;
  readonly format: EncodedFormat;
  /** One frame's size in the output. */
  readonly width: number;
  readonly height: number;
  readonly queueMs: number;
  readonly transformMs: number;
}

/**
 * Abort on decoder errors (truncated or corrupt data) but not on warnings: camera JPEGs often carry harmless
 * warnings ("extraneous bytes before marker") and refusing them would break real originals.
 */
const FAIL_ON = "error";

/** What the header says, read without decoding a pixel. */
interface SourceHeader {
  readonly format: ImageFormat;
  readonly width: number;
  readonly frameHeight: number;
  readonly frames: number;
  readonly isRotatedQuarter: boolean;
  readonly hasAlpha: boolean;
  readonly hasProfile: boolean;
  readonly channels: number;
}

/**
 * Runs sharp for the proxy: checks the original's header before any decode, then renders inside the limiter
 * under a deadline. Every error it throws is a ProxyError.
 */
export class Transformer {
  readonly #config: TransformConfig;
  readonly #limiter: WorkLimiter;
  readonly #memory: MemoryBudget | undefined;
  #transforms = 0;
  #failures = 0;
  #renders = 0;

  /** With `memory`, each transform first takes a lease of its estimated working set (queued until it fits). */
  constructor(config: TransformConfig, memory?: MemoryBudget) {
    this.#config = config;
    this.#memory = memory;
    this.#limiter = new WorkLimiter({ name: "transforms", concurrency: config.concurrency, queue: config.queue });
    configureSharp(config);
  }

  /**
   * Inspects the header first (sharp metadata: no full decode): width*height (per page) > maxSourcePixels =>
   * SOURCE_TOO_LARGE; SVG refused (NOT_AN_IMAGE) unless config.allowSvg; corrupt/truncated => UNSUPPORTED_IMAGE;
   * then runs the pipeline inside the limiter with config.timeoutMs (=> TRANSFORM_TIMEOUT; the deadline starts when
   * the job leaves the queue). A full queue => OVERLOADED at once.
   */
  async transform(original: Buffer, options: TransformOptions, format: OutputFormat): Promise<TransformResult> {
    try {
      const header = await inspectHeader(original, this.#config);
      const encoding = resolveEncoding(format, header);
      const plan = planRender(options, encoding, header, this.#config);
      const frames = framesToRender(encoding, header, this.#config);
      const queuedAt = performance.now();
      // The original stays referenced while the job waits and runs, cached or not: it is part of the lease.
      const lease = await this.#memory?.admit(original.byteLength + workingSetOf(plan, header, frames));
      const memoryWaitMs = performance.now() - queuedAt;
      const { value, queueMs } = await this.#runWithDeadline(() => {
        this.#renders++;
        return render(original, plan, frames, this.#config);
      }, lease);
      this.#transforms++;
      return { ...value, format: encoding, queueMs: memoryWaitMs + queueMs };
    } catch (error) {
      if (!(isProxyError(error) && error.code === "OVERLOADED")) this.#failures++;
      throw toProxyError(error);
    }
  }

  /**
   * transforms = succeeded, failures = refused or failed (OVERLOADED counts in rejected instead), renders = jobs that
   * began decoding (a source refused from its header never does).
   */
  stats(): {
    transforms: number;
    renders: number;
    inFlight: number;
    queued: number;
    rejected: number;
    failures: number;
  } {
    return { transforms: this.#transforms, renders: this.#renders, ...this.#limiter.stats(), failures: this.#failures };
  }

  /**
   * The caller gets TRANSFORM_TIMEOUT at timeoutMs, but the limiter slot stays taken until libvips really stops
   * (sharp's own timeout, rounded up to whole seconds), so a stuck job cannot let more jobs than cores pile on.
   */
  async #runWithDeadline<T>(work: () => Promise<T>, lease?: Lease): Promise<{ value: T; queueMs: number }> {
    let timer: NodeJS.Timeout | undefined;
    let startDeadline = (): void => {};
    const deadline = new Promise<never>((_, reject) => {
      startDeadline = () => {
        timer = setTimeout(() => {
          reject(new ProxyError("TRANSFORM_TIMEOUT", `The transform took longer than ${this.#config.timeoutMs} ms`));
        }, this.#config.timeoutMs);
      };
    });
    const job = this.#limiter.run(() => {
      startDeadline();
      return work();
    });
    job.catch(() => {}); // after a timeout nobody awaits the job any more; its error is expected and ignored
    // The memory stays taken until libvips has really finished (or the job was refused), like the limiter slot.
    if (lease) void job.finally(() => lease.release()).catch(() => {});
    try {
      return await Promise.race([job, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * One libvips thread per job when the limiter already runs one job per core (the default): more threads would only
 * oversubscribe the CPU and, on glibc, fragment memory (sharp's reason for defaulting to 1 there). With fewer jobs
 * than cores each job gets the spare cores: AVIF encoding scales with threads (measured 4K → 1280 px, effort 2:
 * 850 ms with 1 thread, 530 ms with 2). libvips' operation cache is off: every original is a new buffer, so it would
 * only hold up to 50 MB of decoded pixels that are never reused (variants are cached a layer up).
 */
function configureSharp(config: TransformConfig): void {
  sharp.concurrency(Math.max(1, Math.floor(availableParallelism() / config.concurrency)));
  sharp.cache(false);
}

async function inspectHeader(original: Buffer, config: TransformConfig): Promise<SourceHeader> {
  const sniffed = sniffImageFormat(original);
  if (sniffed === undefined) {
    throw new ProxyError("NOT_AN_IMAGE", "The original is not a JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIF image");
  }
  // Scripts in SVG never run in librsvg, but its parser is a large attack surface for untrusted input: opt-in only.
  if (sniffed === "svg" && !config.allowSvg) throw new ProxyError("NOT_AN_IMAGE", "SVG originals are not served");
  let metadata: Metadata;
  try {
    // Only the header is parsed here: a PNG claiming 50,000 x 50,000 px costs a few KB, not 10 GB.
    metadata = await sharp(original, { limitInputPixels: false, failOn: FAIL_ON }).metadata();
  } catch (cause) {
    throw new ProxyError("UNSUPPORTED_IMAGE", `The original ${sniffed} image has an unreadable header`, { cause });
  }
  const frameHeight = metadata.pageHeight ?? metadata.height;
  const pixelsPerFrame = metadata.width * frameHeight;
  if (!(pixelsPerFrame > 0)) throw new ProxyError("UNSUPPORTED_IMAGE", "The original has no pixels");
  if (pixelsPerFrame > config.maxSourcePixels) {
    throw new ProxyError(
      "SOURCE_TOO_LARGE",
      `The original is ${metadata.width}x${frameHeight} px, more than the ${config.maxSourcePixels} px limit`,
    );
  }
  return {
    format: sniffed,
    width: metadata.width,
    frameHeight,
    frames: metadata.pages ?? 1,
    isRotatedQuarter: (metadata.orientation ?? 1) >= 5, // EXIF 5-8 swap width and height
    hasAlpha: metadata.hasAlpha,
    hasProfile: metadata.hasProfile,
    channels: metadata.channels ?? 3,
  };
}

/**
 * "original" keeps the original's format where browsers can show it (JPEG, PNG, WebP, AVIF, GIF: GIF stays GIF so
 * clients that took the GIF can read the variant and animation survives). TIFF and HEIF, which most browsers cannot
 * show, become JPEG, or PNG when they have alpha; SVG is rasterised to PNG to keep its transparency.
 */
export function resolveEncoding(
  format: OutputFormat,
  header: Pick<SourceHeader, "format" | "hasAlpha">,
): EncodedFormat {
  if (format !== "original") return format;
  switch (header.format) {
    case "jpeg":
    case "png":
    case "webp":
    case "avif":
    case "gif":
      return header.format;
    case "svg":
      return "png";
    case "tiff":
    case "heif":
      return header.hasAlpha ? "png" : "jpeg";
  }
}

function planRender(
  options: TransformOptions,
  encoding: EncodedFormat,
  header: SourceHeader,
  config: TransformConfig,
): RenderPlan {
  const target = resolveTargetSize(options, config);
  return {
    width: target.width,
    height: target.height,
    fit: options.fit ?? "cover",
    enlarge: options.enlarge,
    maxOutputDimension: config.maxOutputDimension,
    sourceWidth: header.isRotatedQuarter ? header.frameHeight : header.width,
    sourceHeight: header.isRotatedQuarter ? header.width : header.frameHeight,
    hasAlpha: header.hasAlpha,
    hasProfile: header.hasProfile,
    format: encoding,
    quality: options.quality,
    avifEffort: config.avifEffort,
  };
}

/**
 * Frames to decode: 1 unless the output can animate (WebP, GIF) and maxAnimationFrames allows more, and never so
 * many that all frames together exceed maxSourcePixels (100 frames of 1000x1000 would be 400 MB of pixels).
 */
/** The working set of a planned render (see working-set.ts for the measurements behind it). */
function workingSetOf(plan: RenderPlan, header: SourceHeader, frames: number): number {
  const output = expectedOutputSize(plan);
  return estimateWorkingSet({
    sourceFormat: header.format,
    sourceWidth: header.width,
    sourceHeight: header.frameHeight,
    channels: header.channels,
    isRotated: header.isRotatedQuarter,
    outputWidth: output.width,
    outputHeight: output.height,
    frames,
    format: plan.format,
  });
}

function framesToRender(encoding: EncodedFormat, header: SourceHeader, config: TransformConfig): number {
  if (encoding !== "webp" && encoding !== "gif") return 1;
  const pixelsPerFrame = header.width * header.frameHeight;
  const budget = Math.floor(config.maxSourcePixels / pixelsPerFrame);
  return Math.max(1, Math.min(header.frames, config.maxAnimationFrames, budget));
}

async function render(
  original: Buffer,
  plan: RenderPlan,
  frames: number,
  config: TransformConfig,
): Promise<{ body: Buffer; width: number; height: number; transformMs: number }> {
  const startedAt = performance.now();
  let image = sharp(original, {
    failOn: FAIL_ON,
    // Second guard after inspectHeader: libvips refuses to decode more than this, whatever the header claimed.
    limitInputPixels: config.maxSourcePixels,
    pages: frames,
  }).timeout({ seconds: Math.ceil(config.timeoutMs / 1000) });
  for (const step of STEPS) image = step.apply(image, plan);
  try {
    const { data, info } = await image.toBuffer({ resolveWithObject: true });
    return {
      body: data,
      width: info.width,
      height: info.pageHeight ?? info.height,
      transformMs: performance.now() - startedAt,
    };
  } catch (cause) {
    throw translateSharpError(cause);
  }
}

function translateSharpError(cause: unknown): ProxyError {
  const message = cause instanceof Error ? cause.message : String(cause);
  if (/pixel limit/i.test(message)) {
    return new ProxyError("SOURCE_TOO_LARGE", "The original has more pixels than allowed", { cause });
  }
  if (/timeout/i.test(message)) {
    return new ProxyError("TRANSFORM_TIMEOUT", "libvips stopped the transform at its time limit", { cause });
  }
  return new ProxyError("UNSUPPORTED_IMAGE", "The original could not be decoded (corrupt or truncated)", { cause });
}

function toProxyError(error: unknown): ProxyError {
  return isProxyError(error) ? error : translateSharpError(error);
}
