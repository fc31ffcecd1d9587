import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";
import sharp from "sharp";
import type { Metadata } from "sharp";
import type { TransformConfig } from "../config/config.ts";
import { isProxyError, ProxyError } from "../errors.ts";
import { sniffImageFormat } from "../shared/image-format.ts";
import type { ImageFormat } from "../shared/image-format.ts";
import { WorkLimiter } from "./limiter.ts";
import type { OutputFormat } from "./negotiate.ts";
import type { Region, TransformOptions } from "./options.ts";
import { isQuarterTurn, orientationOf, orientPoint, orientRegion } from "./orientation.ts";
import { encodePlaceholder, MAX_PLACEHOLDER_SIDE } from "./placeholder.ts";
import { colour } from "./steps/colour.ts";
import { crop } from "./steps/crop.ts";
import { effects } from "./steps/effects.ts";
import { focus } from "./steps/focus.ts";
import { format as encode } from "./steps/format.ts";
import { orient } from "./steps/orient.ts";
import { resize } from "./steps/resize.ts";
import type { EncodedFormat, FocusCrop, RenderPlan, TransformStep } from "./steps/step.ts";
import { halfTurnAndMirror, quarterTurn } from "./steps/turn.ts";
import { resolveTargetSize } from "./target-size.ts";
import { coverSize, estimateWorkingSet, expectedOutputSize } from "./working-set.ts";
import type { Lease, MemoryBudget } from "../memory/memory-budget.ts";

/**
 * Read top to bottom: what happens to every variant, in order. The order of the calls matters to sharp where it
 * says so: the crop before the resize (cut from the original), a quarter turn before it, a half turn or mirror and
 * the focal window after it.
 */
export const STEPS: readonly TransformStep[] = [
  orient,
  crop,
  quarterTurn,
  resize,
  halfTurnAndMirror,
  focus,
  effects,
  colour,
  encode,
];

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
  /** EXIF Orientation, 1 (upright) when absent. */
  readonly orientation: number;
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
      if (options.crop !== undefined) checkCrop(options.crop, header);
      const encoding = resolveEncoding(format, header);
      const plan = planRender(options, encoding, header, this.#config);
      const frames = framesToRender(plan, header, this.#config);
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
    orientation: metadata.orientation ?? 1,
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

/** The original after EXIF orientation, one frame. */
function orientedSize(header: SourceHeader): { width: number; height: number } {
  return header.isRotatedQuarter
    ? { width: header.frameHeight, height: header.width }
    : { width: header.width, height: header.frameHeight };
}

/** crop must lie inside the oriented original: only now, with the header read, is its size known. */
function checkCrop(region: Region, header: SourceHeader): void {
  const { width, height } = orientedSize(header);
  if (region.left + region.width > width || region.top + region.height > height) {
    throw new ProxyError(
      "INVALID_OPTIONS",
      `Invalid option crop: ${region.left},${region.top},${region.width},${region.height} is not inside the ` +
        `${width}x${height} px image (left + width must be at most ${width}, top + height at most ${height})`,
    );
  }
}

function planRender(
  options: TransformOptions,
  encoding: EncodedFormat,
  header: SourceHeader,
  config: TransformConfig,
): RenderPlan {
  const target = resolveTargetSize(options, config);
  const orientation = orientationOf(options.rotation, options.flip);
  const oriented = orientedSize(header);
  const picked = options.crop ?? { left: 0, top: 0, ...oriented };
  const isQuarter = isQuarterTurn(orientation);
  const fit = options.fit ?? "cover";
  const plan: RenderPlan = {
    width: target.width,
    height: target.height,
    fit,
    enlarge: options.enlarge,
    maxOutputDimension: config.maxOutputDimension,
    sourceWidth: isQuarter ? picked.height : picked.width,
    sourceHeight: isQuarter ? picked.width : picked.height,
    // sharp turns a quarter turn before it cuts (see steps/turn.ts), so the region is turned with the picture.
    crop:
      options.crop === undefined || !isQuarter
        ? options.crop
        : orientRegion(orientation, options.crop, oriented.width, oriented.height),
    orientation,
    gravity: options.gravity ?? "center",
    focus: undefined,
    background: options.background === undefined ? undefined : `#${options.background}`,
    blur: options.blur,
    sharpen: options.sharpen,
    hasAlpha: header.hasAlpha,
    hasProfile: header.hasProfile,
    format: encoding,
    quality: options.quality,
    avifEffort: config.avifEffort,
  };
  // fp is a point of the oriented original; the window is cut from the cropped, turned and resized picture.
  const { focalPoint } = options;
  const point =
    focalPoint === undefined || !isCoverCrop(plan)
      ? undefined
      : orientPoint(
          orientation,
          clamp01((focalPoint.x * oriented.width - picked.left) / picked.width),
          clamp01((focalPoint.y * oriented.height - picked.top) / picked.height),
        );
  const focused = point === undefined ? plan : { ...plan, focus: planFocus(plan, point) };
  return encoding === "thumbhash" ? planPlaceholder(focused, point) : focused;
}

function isCoverCrop(plan: RenderPlan): boolean {
  return plan.width !== undefined && plan.height !== undefined && plan.fit === "cover";
}

function clamp01(value: number): number {
  return Math.min(1, Math.max(0, value));
}

/**
 * fp: scale the picture to cover the box (never up without enlarge), then the box-sized window (smaller where the
 * picture is) centred on the point, moved back inside the picture where it would stick out.
 */
function planFocus(plan: RenderPlan, point: { x: number; y: number }): FocusCrop {
  const { sourceWidth: sw, sourceHeight: sh } = plan;
  const boxWidth = plan.width ?? sw;
  const boxHeight = plan.height ?? sh;
  let scale = Math.max(boxWidth / sw, boxHeight / sh);
  if (!plan.enlarge) scale = Math.min(scale, 1);
  const coverWidth = Math.max(1, Math.round(sw * scale));
  const coverHeight = Math.max(1, Math.round(sh * scale));
  const width = Math.min(boxWidth, coverWidth);
  const height = Math.min(boxHeight, coverHeight);
  const place = (at: number, size: number, room: number): number =>
    Math.min(room - size, Math.max(0, Math.round(at * room - size / 2)));
  return {
    coverWidth,
    coverHeight,
    window: { left: place(point.x, width, coverWidth), top: place(point.y, height, coverHeight), width, height },
  };
}

/**
 * f=thumbhash: the variant the other options describe, scaled to fit 100x100 (ThumbHash's limit), so a placeholder
 * has the colours and aspect ratio of the picture it stands in for. The same crop at a smaller scale: cover, contain
 * and fill keep their fit in the smaller box; otherwise the variant has the picture's own shape, and fitting the
 * picture inside its scaled size gives exactly sharp's `resize(100, 100, { fit: "inside" })`. blur and sharpen would
 * not change a placeholder.
 */
function planPlaceholder(plan: RenderPlan, point: { x: number; y: number } | undefined): RenderPlan {
  const base = { ...plan, blur: undefined, sharpen: undefined };
  const output = expectedOutputSize(plan);
  const scale = Math.min(1, MAX_PLACEHOLDER_SIDE / output.width, MAX_PLACEHOLDER_SIDE / output.height);
  const width = Math.max(1, Math.round(output.width * scale));
  const height = Math.max(1, Math.round(output.height * scale));
  const keepsFit =
    plan.width !== undefined && plan.height !== undefined && plan.fit !== "inside" && plan.fit !== "outside";
  if (!keepsFit) return { ...base, width, height, fit: "inside", enlarge: true, focus: undefined };
  const smaller = { ...base, width, height };
  return point === undefined ? smaller : { ...smaller, focus: planFocus(smaller, point) };
}

/**
 * Frames to decode: 1 unless the output can animate (WebP, GIF) and maxAnimationFrames allows more, and never so
 * many that all frames together exceed maxSourcePixels (100 frames of 1000x1000 would be 400 MB of pixels). Turns and
 * smart crops take 1 frame: sharp refuses them on a strip of frames, and a half-turned strip plays backwards.
 */
function framesToRender(plan: RenderPlan, header: SourceHeader, config: TransformConfig): number {
  if (plan.format !== "webp" && plan.format !== "gif") return 1;
  if (plan.orientation.turn !== 0 || isSmartCrop(plan)) return 1;
  const pixelsPerFrame = header.width * header.frameHeight;
  const budget = Math.floor(config.maxSourcePixels / pixelsPerFrame);
  return Math.max(1, Math.min(header.frames, config.maxAnimationFrames, budget));
}

function isSmartCrop(plan: RenderPlan): boolean {
  return plan.focus === undefined && isCoverCrop(plan) && (plan.gravity === "attention" || plan.gravity === "entropy");
}

/** The working set of a planned render (see working-set.ts for the measurements behind it). */
function workingSetOf(plan: RenderPlan, header: SourceHeader, frames: number): number {
  const output = expectedOutputSize(plan);
  const hasExtract = plan.crop !== undefined || plan.focus !== undefined;
  // sharp orients before anything else once an extract is asked for (and turns a quarter turn before the resize).
  const isTurnedFirst = isQuarterTurn(plan.orientation) || (hasExtract && header.orientation >= 2);
  // After the resize, a half turn (ours or EXIF 3/4) holds the cover-scaled (or resized) picture whole; a smart
  // crop ranks it.
  const isExifHalfTurn = header.orientation === 3 || header.orientation === 4;
  const isHeld = plan.orientation.turn === 180 || (isExifHalfTurn && !isTurnedFirst);
  const held = isCoverCrop(plan) ? coverSize(plan) : output;
  const heldPixels = held.width * held.height * frames;
  return estimateWorkingSet({
    sourceFormat: header.format,
    sourceWidth: header.width,
    sourceHeight: header.frameHeight,
    channels: header.channels,
    isRotated: header.isRotatedQuarter,
    isTurnedFirst,
    cropRows: plan.crop?.height,
    outputWidth: output.width,
    outputHeight: output.height,
    heldPixels: isHeld ? heldPixels : 0,
    smartCropPixels: isSmartCrop(plan) ? heldPixels : 0,
    blurSigma: plan.blur,
    isSharpened: plan.sharpen !== undefined,
    frames,
    format: plan.format,
  });
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
      body: plan.format === "thumbhash" ? encodePlaceholder(data, info.width, info.height) : data,
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
