import type { ReactNode } from "react";
import { GRAVITIES, type Gravity } from "imagika/url";
import type { OriginalImage, PresetEntry } from "../lib/api.ts";
import {
  ASPECTS,
  choosePreset,
  type Aspect,
  type BoxFit,
  type FlipChoice,
  type PlaygroundSettings,
  type Rotation,
  type ViewerFormat,
} from "../lib/playground.ts";

const FORMAT_CHOICES: readonly { value: ViewerFormat; label: string }[] = [
  { value: "auto", label: "Auto" },
  { value: "avif", label: "AVIF" },
  { value: "webp", label: "WebP" },
  { value: "jpeg", label: "JPEG" },
  { value: "original", label: "Original (no options)" },
];
const WIDTH_CHOICES = [320, 640, 960, 1280, 1920, 2560, 3840] as const;
const QUALITY_CHOICES = [30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 100] as const;
const FLIP_LABELS: Record<FlipChoice, string> = { none: "None", h: "Left-right", v: "Top-bottom", hv: "Both" };
/** Slider ranges: the proxy takes blur 0.3-100 and sharpen 0.5-10; past these nothing new is visible. */
const BLUR_MAX = 20;
const SHARPEN_MAX = 5;
const DEFAULT_BACKGROUND = "#1d242e";

/**
 * The playground's options, as controlled fields: a preset, size and shape, gravity, turn and mirror, blur, sharpen,
 * background, format and quality. The focal point and crop come from the SourcePicker; here they can be cleared.
 */
export function PlaygroundControls({
  image,
  settings,
  presets,
  dpr,
  onChange,
}: {
  image: OriginalImage;
  settings: PlaygroundSettings;
  /** undefined while /api/presets loads. */
  presets: readonly PresetEntry[] | undefined;
  dpr: number;
  onChange: (next: PlaygroundSettings) => void;
}) {
  const set = <K extends keyof PlaygroundSettings>(key: K, value: PlaygroundSettings[K]) =>
    onChange({ ...settings, [key]: value });
  const isOriginal = settings.format === "original";
  const hasBox = settings.aspect !== "original";
  const isCover = hasBox && settings.fit === "cover";
  const preset = presets?.find((entry) => entry.name === settings.preset);

  return (
    <form className="controls" aria-label="Image options" onSubmit={(event) => event.preventDefault()}>
      <Field label="Preset" hint={preset ? <code>{preset.options}</code> : presetHint(presets)}>
        <select
          value={settings.preset}
          disabled={isOriginal || !presets || presets.length === 0}
          onChange={(event) => onChange(choosePreset(settings, event.target.value))}
        >
          <option value="">None</option>
          {(presets ?? []).map((entry) => (
            <option key={entry.name} value={entry.name}>
              {entry.name}
            </option>
          ))}
        </select>
      </Field>
      <Field label="Width">
        <select
          value={String(settings.width)}
          disabled={isOriginal}
          onChange={(event) => {
            const value = event.target.value;
            set("width", value === "fit" || value === "preset" ? value : Number(value));
          }}
        >
          {settings.preset !== "" ? <option value="preset">From preset</option> : null}
          <option value="fit">Fit stage ({Math.round(dpr * 100) / 100}×)</option>
          {WIDTH_CHOICES.filter((w) => w <= image.width).map((w) => (
            <option key={w} value={w}>
              {w} px
            </option>
          ))}
        </select>
      </Field>
      <Field label="Aspect">
        <select
          value={settings.aspect}
          disabled={isOriginal}
          onChange={(event) => set("aspect", event.target.value as Aspect)}
        >
          {Object.keys(ASPECTS).map((aspect) => (
            <option key={aspect} value={aspect}>
              {aspect === "original" ? "Original" : aspect}
            </option>
          ))}
        </select>
      </Field>
      <Field label="Fit">
        <select
          value={settings.fit}
          disabled={isOriginal || !hasBox}
          onChange={(event) => set("fit", event.target.value as BoxFit)}
        >
          <option value="cover">Cover (crop)</option>
          <option value="contain">Contain (pad)</option>
          <option value="fill">Fill (stretch)</option>
        </select>
      </Field>
      <Field label="Gravity" hint={isCover ? undefined : "acts on cover crops: pick an aspect"}>
        <select
          value={settings.focalPoint ? "focal-point" : settings.gravity}
          disabled={isOriginal || !isCover}
          onChange={(event) => onChange({ ...settings, gravity: event.target.value as Gravity, focalPoint: undefined })}
        >
          {settings.focalPoint ? <option value="focal-point">Focal point</option> : null}
          {GRAVITIES.map((gravity) => (
            <option key={gravity} value={gravity}>
              {gravity}
            </option>
          ))}
        </select>
      </Field>
      <Field label="Rotate">
        <select
          value={settings.rotation}
          disabled={isOriginal}
          onChange={(event) => set("rotation", Number(event.target.value) as Rotation)}
        >
          {[0, 90, 180, 270].map((turn) => (
            <option key={turn} value={turn}>
              {turn}°
            </option>
          ))}
        </select>
      </Field>
      <Field label="Flip">
        <select
          value={settings.flip}
          disabled={isOriginal}
          onChange={(event) => set("flip", event.target.value as FlipChoice)}
        >
          {(Object.keys(FLIP_LABELS) as FlipChoice[]).map((flip) => (
            <option key={flip} value={flip}>
              {FLIP_LABELS[flip]}
            </option>
          ))}
        </select>
      </Field>
      <Slider
        label="Blur"
        value={settings.blur}
        max={BLUR_MAX}
        disabled={isOriginal}
        onChange={(v) => set("blur", v)}
      />
      <Slider
        label="Sharpen"
        value={settings.sharpen}
        max={SHARPEN_MAX}
        disabled={isOriginal}
        onChange={(v) => set("sharpen", v)}
      />
      <Field label="Background" hint={hasBox && settings.fit === "contain" ? undefined : "pads fit=contain"}>
        <span className="field__pair">
          <input
            type="checkbox"
            checked={settings.background !== undefined}
            disabled={isOriginal}
            aria-label="Set a background"
            onChange={(event) => set("background", event.target.checked ? DEFAULT_BACKGROUND : undefined)}
          />
          <input
            type="color"
            value={settings.background ?? DEFAULT_BACKGROUND}
            disabled={isOriginal || settings.background === undefined}
            aria-label="Background colour"
            onChange={(event) => set("background", event.target.value)}
          />
        </span>
      </Field>
      <Field label="Format">
        <select value={settings.format} onChange={(event) => set("format", event.target.value as ViewerFormat)}>
          {settings.preset !== "" ? <option value="preset">From preset</option> : null}
          {FORMAT_CHOICES.map((choice) => (
            <option key={choice.value} value={choice.value}>
              {choice.label}
            </option>
          ))}
        </select>
      </Field>
      <Field label="Quality">
        <select
          value={String(settings.quality)}
          disabled={isOriginal}
          onChange={(event) =>
            set("quality", event.target.value === "default" ? "default" : Number(event.target.value))
          }
        >
          <option value="default">Default</option>
          {QUALITY_CHOICES.map((q) => (
            <option key={q} value={q}>
              {q}
            </option>
          ))}
        </select>
      </Field>
    </form>
  );
}

function presetHint(presets: readonly PresetEntry[] | undefined): ReactNode {
  if (!presets) return "loading…";
  return presets.length === 0 ? (
    <>
      none on this proxy (<code>--presets</code>)
    </>
  ) : undefined;
}

/** A labelled control; the hint goes under it, outside the label, so it is not read as part of the control's name. */
function Field({ label, hint, children }: { label: string; hint?: ReactNode; children: ReactNode }) {
  return (
    <>
      <label className="field">
        <span className="field__label">{label}</span>
        {children}
      </label>
      {hint ? <p className="field__hint">{hint}</p> : null}
    </>
  );
}

/** 0 is off; the proxy's lower limits (blur 0.3, sharpen 0.5) are below the first step. */
function Slider({
  label,
  value,
  max,
  disabled,
  onChange,
}: {
  label: string;
  value: number;
  max: number;
  disabled: boolean;
  onChange: (value: number) => void;
}) {
  return (
    <Field label={label}>
      <span className="field__pair">
        <input
          type="range"
          min={0}
          max={max}
          step={0.5}
          value={value}
          disabled={disabled}
          onChange={(event) => onChange(Number(event.target.value))}
        />
        <output className="field__value">{value === 0 ? "off" : value}</output>
      </span>
    </Field>
  );
}
