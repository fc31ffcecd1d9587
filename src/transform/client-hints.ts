import type { OptionRules, TransformOptions } from "./options.ts";
import { MAX_DPR } from "./options.ts";

/** What image responses send with --client-hints, so browsers add the hints to later image requests. */
export const ACCEPT_CH = "Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width";

/** w=auto without any width hint: a desktop layout viewport, in CSS pixels (multiplied by dpr like a viewport). */
export const DEFAULT_VIEWPORT_WIDTH = 1280;

/**
 * w=auto snaps up to one of these widths (device pixels) unless --allowed-widths is set, so a hint cannot make more
 * than 19 variants of an image: Next.js' image and device sizes, plus 160, 320, 1280, 1440 and 2560 (common layout
 * and laptop widths). A hint above the last takes the last.
 */
export const AUTO_WIDTHS: readonly number[] = [
  16, 32, 48, 64, 96, 128, 160, 256, 320, 384, 640, 750, 828, 1080, 1200, 1280, 1440, 1920, 2048, 2560, 3840,
];

/** dpr=auto rounds the hint up to a multiple of this (2.625 → 3): 7 values from 1 to 4, never fewer pixels. */
export const DPR_STEP = 0.5;

/** The raw hint headers of a request (RFC 8942 client hints; Width and DPR are their pre-2020 names). */
export interface ClientHints {
  readonly secChWidth?: string | undefined;
  readonly width?: string | undefined;
  readonly secChViewportWidth?: string | undefined;
  readonly secChDpr?: string | undefined;
  readonly dpr?: string | undefined;
}

const WIDTH_HINTS = "Sec-CH-Width, Width, Sec-CH-Viewport-Width";
const DPR_HINTS = "Sec-CH-DPR, DPR";

/**
 * The request headers a response with these options depends on, for Vary: every hint the auto options consult,
 * present or not (a cache must not hand the no-hint answer to a client that sends hints). undefined: none.
 */
export function hintsVary(options: TransformOptions): string | undefined {
  if (options.isWidthAuto === true) return options.isDprAuto === true ? `${DPR_HINTS}, ${WIDTH_HINTS}` : WIDTH_HINTS;
  return options.isDprAuto === true ? DPR_HINTS : undefined;
}

/** A positive number (an sf-integer or sf-decimal); anything else counts as absent. */
function hintNumber(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const text = raw.trim();
  const value = /^\d{1,6}(\.\d{1,6})?$/.test(text) ? Number(text) : NaN;
  return value > 0 ? value : undefined;
}

/** The first of `widths` at or above `width`, else the last. */
function snapUp(width: number, widths: readonly number[]): number {
  for (const candidate of widths) if (candidate >= width) return candidate;
  return widths[widths.length - 1] ?? width;
}

/** The widths w=auto (and dpr=auto with --allowed-widths) may produce, within the output limit. */
function autoWidthsOf(rules: OptionRules): readonly number[] {
  const allowed = rules.allowedWidths ?? [];
  if (allowed.length > 0) return allowed;
  const widths = AUTO_WIDTHS.filter((width) => width <= rules.maxOutputDimension);
  return widths.length > 0 ? widths : [rules.maxOutputDimension];
}

/**
 * Concrete options for this request: dpr=auto is Sec-CH-DPR (or DPR), clamped to 1-4 and rounded up to DPR_STEP, 1
 * without a hint. w=auto is Sec-CH-Width (or Width; both in device pixels), else Sec-CH-Viewport-Width (CSS pixels)
 * x dpr, else DEFAULT_VIEWPORT_WIDTH x dpr, snapped up to --allowed-widths or AUTO_WIDTHS. An explicit w with
 * dpr=auto gives w x dpr, snapped up to --allowed-widths when set. The result has no auto left; its width is in
 * CSS pixels of the resolved dpr, so resolveTargetSize gives the snapped width exactly.
 */
export function resolveClientHints(
  options: TransformOptions,
  hints: ClientHints,
  rules: OptionRules,
): TransformOptions {
  const { isWidthAuto, isDprAuto, ...rest } = options;
  const dpr = isDprAuto === true ? snapDpr(hintNumber(hints.secChDpr) ?? hintNumber(hints.dpr)) : options.dpr;
  let deviceWidth: number | undefined;
  if (isWidthAuto === true) {
    const hinted = hintNumber(hints.secChWidth) ?? hintNumber(hints.width);
    const wanted = hinted ?? (hintNumber(hints.secChViewportWidth) ?? DEFAULT_VIEWPORT_WIDTH) * dpr;
    deviceWidth = snapUp(Math.ceil(Math.min(wanted, rules.maxOutputDimension)), autoWidthsOf(rules));
  } else if (isDprAuto === true && options.width !== undefined) {
    const width = Math.min(rules.maxOutputDimension, Math.round(options.width * dpr));
    deviceWidth = (rules.allowedWidths ?? []).length > 0 ? snapUp(width, autoWidthsOf(rules)) : width;
  }
  return Object.freeze({ ...rest, dpr, ...(deviceWidth === undefined ? {} : { width: deviceWidth / dpr }) });
}

function snapDpr(hint: number | undefined): number {
  const clamped = Math.min(MAX_DPR, Math.max(1, hint ?? 1));
  return Math.ceil(clamped / DPR_STEP - 1e-9) * DPR_STEP;
}

/**
 * resolveClientHints, remembered per options object and resolved values, so the same request shape gets the same
 * frozen object and VariantKeys' memory of its cache key keeps working. Bounded: per options object at most
 * 7 dprs x (AUTO_WIDTHS or --allowed-widths) entries, and they go with it (a WeakMap).
 */
export class ClientHintResolver {
  readonly #rules: OptionRules;
  readonly #byOptions = new WeakMap<TransformOptions, Map<string, TransformOptions>>();

  constructor(rules: OptionRules) {
    this.#rules = rules;
  }

  resolve(options: TransformOptions, hints: ClientHints): TransformOptions {
    const resolved = resolveClientHints(options, hints, this.#rules);
    const key = `${resolved.width ?? ""}@${resolved.dpr}`;
    let byValues = this.#byOptions.get(options);
    if (byValues === undefined) this.#byOptions.set(options, (byValues = new Map<string, TransformOptions>()));
    const remembered = byValues.get(key);
    if (remembered !== undefined) return remembered;
    byValues.set(key, resolved);
    return resolved;
  }
}
