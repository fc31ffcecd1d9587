import { Fragment, useCallback, useEffect, useLayoutEffect, useRef, useState, type ReactNode } from "react";
import { fetchPresets, purgeCache, type AdminResult, type OriginalImage, type PresetEntry } from "../lib/api.ts";
import { formatDimensions } from "../lib/format.ts";
import { DEFAULT_SETTINGS, playgroundUrl, type PlaygroundSettings } from "../lib/playground.ts";
import { useDebounced, useVariant } from "../lib/use-variant.ts";
import { FactsPanel, type DeliveredFacts } from "./FactsPanel.tsx";
import { HttpErrorNotice } from "./Notice.tsx";
import { PlaygroundControls } from "./PlaygroundControls.tsx";
import { SourcePicker } from "./SourcePicker.tsx";

/** Fallback stage size before layout (and in jsdom, which has none). */
const DEFAULT_STAGE = { width: 960, height: 640 };
/** A control held still this long is fetched: sliders and drags ask for one variant, not one per step. */
export const FETCH_DEBOUNCE_MS = 250;

/**
 * Modal playground for one original: the options (preset, size, shape, crop, focal point, gravity, turn, mirror,
 * blur, sharpen, background, format, quality) on one side, the variant on the stage sized to it and the screen's DPR,
 * and the URL, bytes and timings on the other. `<dialog>` gives the focus trap and Esc; the backdrop closes it too.
 */
export function Viewer({
  image,
  accept,
  adminToken,
  initialSettings = DEFAULT_SETTINGS,
  onClose,
}: {
  image: OriginalImage;
  accept: string;
  adminToken: string;
  initialSettings?: PlaygroundSettings;
  onClose: () => void;
}) {
  const dialogRef = useRef<HTMLDialogElement>(null);
  const stageRef = useRef<HTMLDivElement>(null);
  const [stage, setStage] = useState(DEFAULT_STAGE);
  const [settings, setSettings] = useState<PlaygroundSettings>(initialSettings);
  const [presets, setPresets] = useState<readonly PresetEntry[] | undefined>();
  const [natural, setNatural] = useState<{ objectUrl: string; width: number; height: number } | undefined>();
  const [reloads, setReloads] = useState(0);
  const [purge, setPurge] = useState<AdminResult | "running" | undefined>();
  const dpr = typeof window === "undefined" ? 1 : window.devicePixelRatio || 1;
  const url = playgroundUrl(image, settings, stage, dpr);
  const fetchedUrl = useDebounced(url, FETCH_DEBOUNCE_MS);
  const shown = useVariant(fetchedUrl, accept, reloads);

  useEffect(() => {
    const dialog = dialogRef.current;
    if (!dialog) return;
    if (typeof dialog.showModal === "function" && !dialog.open) dialog.showModal();
    else dialog.setAttribute("open", "");
    return () => {
      if (dialog.open && typeof dialog.close === "function") dialog.close();
    };
  }, []);

  useEffect(() => {
    const controller = new AbortController();
    fetchPresets(controller.signal).then(
      (listing) => setPresets(listing.presets),
      () => setPresets((old) => (controller.signal.aborted ? old : [])), // an older proxy without /api/presets
    );
    return () => controller.abort();
  }, []);

  // Size the request to the stage: snapped widths mean a resize only refetches when it crosses a step.
  useLayoutEffect(() => {
    const element = stageRef.current;
    if (!element) return;
    const measure = () => {
      const rect = element.getBoundingClientRect();
      if (rect.width > 0 && rect.height > 0) {
        setStage((old) =>
          old.width === Math.round(rect.width) && old.height === Math.round(rect.height)
            ? old
            : { width: Math.round(rect.width), height: Math.round(rect.height) },
        );
      }
    };
    measure();
    if (typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => observer.disconnect();
  }, []);

  const variant = shown.kind === "ok" ? shown.variant : shown.kind === "loading" ? shown.previous : undefined;
  const size = shown.kind === "ok" && natural?.objectUrl === shown.variant.objectUrl ? natural : undefined;
  const delivered: DeliveredFacts | undefined =
    shown.kind === "ok"
      ? {
          bytes: shown.variant.bytes,
          contentType: shown.variant.contentType,
          width: size?.width,
          height: size?.height,
          cacheStatus: shown.variant.cacheStatus,
          xCache: shown.variant.xCache,
          serverTiming: shown.variant.serverTiming,
          durationMs: shown.variant.durationMs,
        }
      : undefined;

  const purgeImage = useCallback(async () => {
    setPurge("running");
    const result = await purgeCache(adminToken, { kind: "path", path: image.path });
    setPurge(result);
    if (result.isOk) setReloads((n) => n + 1);
  }, [adminToken, image.path]);

  const isPending = shown.kind === "loading" || fetchedUrl !== url;
  return (
    <dialog
      ref={dialogRef}
      className="viewer"
      aria-labelledby="viewer-title"
      onCancel={(event) => {
        event.preventDefault();
        onClose();
      }}
      onClick={(event) => {
        if (event.target === dialogRef.current) onClose(); // a click on the backdrop, outside the panel
      }}
    >
      <div className="viewer__panel">
        <header className="viewer__head">
          <h2 id="viewer-title" className="viewer__title">
            {image.path}
          </h2>
          <button type="button" className="button button--ghost" onClick={onClose} aria-keyshortcuts="Escape">
            Close <kbd>Esc</kbd>
          </button>
        </header>
        <div className="viewer__body">
          <aside className="viewer__controls" aria-label="Playground">
            <SourcePicker
              image={image}
              focalPoint={settings.focalPoint}
              crop={settings.crop}
              onFocalPoint={(focalPoint) => setSettings((old) => ({ ...old, focalPoint, gravity: "center" }))}
              onCrop={(crop) => setSettings((old) => ({ ...old, crop }))}
            />
            <PickedValues settings={settings} onChange={setSettings} />
            <PlaygroundControls image={image} settings={settings} presets={presets} dpr={dpr} onChange={setSettings} />
            <button type="button" className="button button--small" onClick={() => setSettings(DEFAULT_SETTINGS)}>
              Reset options
            </button>
          </aside>
          <div className="viewer__stage" ref={stageRef} aria-busy={isPending}>
            {shown.kind === "error" ? (
              <HttpErrorNotice
                error={shown.failure.error}
                action={
                  <button type="button" className="button" onClick={() => setReloads((n) => n + 1)}>
                    Try again
                  </button>
                }
              />
            ) : variant ? (
              <img
                key={variant.objectUrl}
                className={`viewer__img${isPending ? " viewer__img--stale" : ""}`}
                src={variant.objectUrl}
                alt={`${image.path}, as the URL beside it asks`}
                onLoad={(event) =>
                  setNatural({
                    objectUrl: variant.objectUrl,
                    width: event.currentTarget.naturalWidth,
                    height: event.currentTarget.naturalHeight,
                  })
                }
              />
            ) : null}
            {isPending ? (
              <div className="viewer__spinner" role="status">
                Loading variant…
              </div>
            ) : null}
          </div>
          <aside className="viewer__side" aria-label="Result">
            <p className="viewer__url">
              <code data-testid="viewer-url">{breakable(url)}</code>
            </p>
            <FactsPanel original={image} delivered={delivered} isFailed={shown.kind === "error"} />
            <div className="viewer__actions">
              <button type="button" className="button" onClick={() => setReloads((n) => n + 1)}>
                Fetch again
              </button>
              <button
                type="button"
                className="button button--danger"
                disabled={purge === "running"}
                onClick={() => void purgeImage()}
              >
                Purge this image
              </button>
            </div>
            {purge !== undefined && purge !== "running" ? (
              <p className={`admin-result admin-result--${purge.isOk ? "ok" : "error"}`} role="status">
                {purge.message}
              </p>
            ) : null}
            <p className="viewer__hint">
              Stage {formatDimensions(stage.width, stage.height)} CSS px. Purging needs the admin token (panel on the
              main page).
            </p>
          </aside>
        </div>
      </div>
    </dialog>
  );
}

/** The focal point and crop picked on the source, each with a button to drop it. */
function PickedValues({
  settings,
  onChange,
}: {
  settings: PlaygroundSettings;
  onChange: (update: (old: PlaygroundSettings) => PlaygroundSettings) => void;
}) {
  const { focalPoint, crop } = settings;
  return (
    <dl className="picked">
      <div className="picked__row">
        <dt>Focal point</dt>
        <dd data-testid="picked-focal-point">{focalPoint ? `${focalPoint.x}, ${focalPoint.y}` : "none"}</dd>
        {focalPoint ? (
          <button
            type="button"
            className="button button--small button--ghost"
            onClick={() => onChange((old) => ({ ...old, focalPoint: undefined }))}
          >
            Clear <span className="visually-hidden">focal point</span>
          </button>
        ) : null}
      </div>
      <div className="picked__row">
        <dt>Crop</dt>
        <dd data-testid="picked-crop">
          {crop ? `${crop.left}, ${crop.top} · ${formatDimensions(crop.width, crop.height)}` : "none"}
        </dd>
        {crop ? (
          <button
            type="button"
            className="button button--small button--ghost"
            onClick={() => onChange((old) => ({ ...old, crop: undefined }))}
          >
            Clear <span className="visually-hidden">crop</span>
          </button>
        ) : null}
      </div>
    </dl>
  );
}

/** The URL with a line-break opportunity before each option, so a long one wraps between options, not inside one. */
function breakable(url: string): ReactNode[] {
  return url.split(/(?=[?&])/).map((part, index) => (
    <Fragment key={index}>
      {index > 0 ? <wbr /> : null}
      {part}
    </Fragment>
  ));
}
