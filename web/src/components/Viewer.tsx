import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "react";
import { purgeCache, type AdminResult, type OriginalImage } from "../lib/api.ts";
import { formatDimensions } from "../lib/format.ts";
import { fitWidth, imageUrl, type Format } from "../lib/image-url.ts";
import { fetchVariant, type FailedVariant, type FetchedVariant } from "../lib/variant-fetch.ts";
import { FactsPanel, type DeliveredFacts } from "./FactsPanel.tsx";
import { HttpErrorNotice } from "./Notice.tsx";

/** "original" asks for the original bytes: no options at all. */
export type ViewerFormat = Exclude<Format, "png" | "thumbhash"> | "original";

const FORMAT_CHOICES: readonly { value: ViewerFormat; label: string }[] = [
  { value: "auto", label: "Auto" },
  { value: "avif", label: "AVIF" },
  { value: "webp", label: "WebP" },
  { value: "jpeg", label: "JPEG" },
  { value: "original", label: "Original (no options)" },
];

const WIDTH_CHOICES = [320, 640, 960, 1280, 1920, 2560, 3840] as const;
const QUALITY_CHOICES = [30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 100] as const;

/** Viewer settings; the URL is derived from them, the stage size and the DPR. */
export interface ViewerSettings {
  readonly width: "fit" | number;
  readonly format: ViewerFormat;
  readonly quality: "default" | number;
}

/** The proxy URL the viewer shows for these settings. Exported for tests. */
export function viewerUrl(
  image: OriginalImage,
  settings: ViewerSettings,
  stage: { width: number; height: number },
  dpr: number,
): string {
  if (settings.format === "original") return imageUrl(image.path);
  const roundedDpr = Math.min(4, Math.max(1, dpr));
  const w =
    settings.width === "fit"
      ? fitWidth(image, stage, roundedDpr)
      : Math.min(settings.width, Math.floor(image.width / roundedDpr));
  return imageUrl(image.path, {
    w,
    q: settings.quality === "default" ? undefined : settings.quality,
    f: settings.format,
    dpr: roundedDpr,
  });
}

type Shown =
  | { kind: "loading"; previous: FetchedVariant | undefined }
  | { kind: "ok"; variant: FetchedVariant }
  | { kind: "error"; failure: FailedVariant };

/** Fallback stage size before layout (and in jsdom, which has none). */
const DEFAULT_STAGE = { width: 960, height: 640 };

/**
 * Modal viewer for one original: the variant sized to the stage and the screen's DPR, controls for width, format and
 * quality, and the facts beside it. Uses `<dialog>` for the focus trap and Esc; closes on Esc, the button or backdrop.
 */
export function Viewer({
  image,
  accept,
  adminToken,
  onClose,
}: {
  image: OriginalImage;
  accept: string;
  adminToken: string;
  onClose: () => void;
}) {
  const dialogRef = useRef<HTMLDialogElement>(null);
  const stageRef = useRef<HTMLDivElement>(null);
  const [stage, setStage] = useState(DEFAULT_STAGE);
  const [settings, setSettings] = useState<ViewerSettings>({ width: "fit", format: "auto", quality: "default" });
  const [shown, setShown] = useState<Shown>({ kind: "loading", previous: undefined });
  const [natural, setNatural] = useState<{ width: number; height: number } | undefined>();
  const [reloads, setReloads] = useState(0);
  const [purge, setPurge] = useState<AdminResult | "running" | undefined>();
  const dpr = typeof window === "undefined" ? 1 : window.devicePixelRatio || 1;
  const url = viewerUrl(image, settings, stage, dpr);

  useEffect(() => {
    const dialog = dialogRef.current;
    if (!dialog) return;
    if (typeof dialog.showModal === "function" && !dialog.open) dialog.showModal();
    else dialog.setAttribute("open", "");
    return () => {
      if (dialog.open && typeof dialog.close === "function") dialog.close();
    };
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

  useEffect(() => {
    const controller = new AbortController();
    let objectUrl: string | undefined;
    setShown((old) => ({ kind: "loading", previous: old.kind === "ok" ? old.variant : undefined }));
    fetchVariant(url, accept, controller.signal).then(
      (result) => {
        if (result.isOk) {
          objectUrl = result.objectUrl;
          if (controller.signal.aborted) URL.revokeObjectURL(objectUrl);
          else {
            setNatural(undefined);
            setShown({ kind: "ok", variant: result });
          }
        } else if (!controller.signal.aborted) {
          setShown({ kind: "error", failure: result });
        }
      },
      () => undefined, // aborted: a newer request owns the stage
    );
    return () => {
      controller.abort();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [url, accept, reloads]);

  const variant = shown.kind === "ok" ? shown.variant : shown.kind === "loading" ? shown.previous : undefined;
  const delivered: DeliveredFacts | undefined =
    shown.kind === "ok"
      ? {
          bytes: shown.variant.bytes,
          contentType: shown.variant.contentType,
          width: natural?.width,
          height: natural?.height,
          cacheStatus: shown.variant.cacheStatus,
          xCache: shown.variant.xCache,
          serverTiming: shown.variant.serverTiming,
          durationMs: shown.variant.durationMs,
        }
      : undefined;

  const purgeImage = useCallback(async () => {
    setPurge("running");
    const result = await purgeCache(adminToken, image.path);
    setPurge(result);
    if (result.isOk) setReloads((n) => n + 1);
  }, [adminToken, image.path]);

  const isOriginal = settings.format === "original";

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
          <div className="viewer__stage" ref={stageRef} aria-busy={shown.kind === "loading"}>
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
                className={`viewer__img${shown.kind === "loading" ? " viewer__img--stale" : ""}`}
                src={variant.objectUrl}
                alt={image.path}
                onLoad={(event) =>
                  setNatural({ width: event.currentTarget.naturalWidth, height: event.currentTarget.naturalHeight })
                }
              />
            ) : null}
            {shown.kind === "loading" ? (
              <div className="viewer__spinner" role="status">
                Loading variant…
              </div>
            ) : null}
          </div>
          <aside className="viewer__side">
            <form className="controls" onSubmit={(event) => event.preventDefault()}>
              <label className="field">
                <span className="field__label">Width</span>
                <select
                  value={String(settings.width)}
                  disabled={isOriginal}
                  onChange={(event) =>
                    setSettings((old) => ({
                      ...old,
                      width: event.target.value === "fit" ? "fit" : Number(event.target.value),
                    }))
                  }
                >
                  <option value="fit">Fit screen ({Math.round(dpr * 100) / 100}×)</option>
                  {WIDTH_CHOICES.filter((w) => w <= image.width).map((w) => (
                    <option key={w} value={w}>
                      {w} px
                    </option>
                  ))}
                </select>
              </label>
              <label className="field">
                <span className="field__label">Format</span>
                <select
                  value={settings.format}
                  onChange={(event) => setSettings((old) => ({ ...old, format: event.target.value as ViewerFormat }))}
                >
                  {FORMAT_CHOICES.map((choice) => (
                    <option key={choice.value} value={choice.value}>
                      {choice.label}
                    </option>
                  ))}
                </select>
              </label>
              <label className="field">
                <span className="field__label">Quality</span>
                <select
                  value={String(settings.quality)}
                  disabled={isOriginal}
                  onChange={(event) =>
                    setSettings((old) => ({
                      ...old,
                      quality: event.target.value === "default" ? "default" : Number(event.target.value),
                    }))
                  }
                >
                  <option value="default">Default</option>
                  {QUALITY_CHOICES.map((q) => (
                    <option key={q} value={q}>
                      {q}
                    </option>
                  ))}
                </select>
              </label>
            </form>
            <p className="viewer__url">
              <code data-testid="viewer-url">{url}</code>
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
