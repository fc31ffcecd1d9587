import { useEffect, useRef, useState } from "react";
import type { OriginalImage } from "../lib/api.ts";
import { formatBytes, formatDimensions } from "../lib/format.ts";
import { describeResponseError, type HttpErrorDescription } from "../lib/http-error.ts";
import { imageSrcSet, imageUrl } from "../lib/image-url.ts";
import { fetchPlaceholder } from "../lib/placeholder.ts";

/** Roughly the tile's rendered width at each breakpoint of `.gallery__grid` (see styles.css). */
export const TILE_SIZES = "(max-width: 560px) 50vw, (max-width: 1100px) 33vw, 22vw";

/** Width of the `src` fallback for browsers without srcset: a typical desktop tile. */
const FALLBACK_WIDTH = 480;

type LoadState =
  | { kind: "loading" }
  | { kind: "loaded" }
  | { kind: "failed"; error: HttpErrorDescription | undefined; isChecking: boolean };

/**
 * How a tile's image loads: `lazy` below the fold; `eager` in the first row (a lazy image there starts late, after
 * layout, and one of them is the Largest Contentful Paint); `high` for the first tile, which also jumps the queue.
 */
export type TilePriority = "lazy" | "eager" | "high";

/** One gallery tile: a button that opens the viewer, showing the original through the proxy at the right size. */
export function ImageTile({
  image,
  priority = "lazy",
  onOpen,
}: {
  image: OriginalImage;
  priority?: TilePriority;
  onOpen: (image: OriginalImage) => void;
}) {
  const [state, setState] = useState<LoadState>({ kind: "loading" });
  const [attempt, setAttempt] = useState(0);
  const imgRef = useRef<HTMLImageElement>(null);
  const placeholder = usePlaceholder(image.path);
  const src = imageUrl(image.path, { w: Math.min(FALLBACK_WIDTH, image.width), f: "auto" });

  // A cached image can finish decoding before React attaches onLoad; catch that case once mounted.
  useEffect(() => {
    const img = imgRef.current;
    if (img?.complete && img.naturalWidth > 0) setState({ kind: "loaded" });
  }, [attempt]);

  const handleError = () => {
    setState({ kind: "failed", error: undefined, isChecking: true });
    // <img> hides the status; one fetch of the same URL says whether it was a 429, a 502 or a missing original.
    void fetch(src, { cache: "no-store" })
      .then(async (response) => (response.ok ? undefined : await describeResponseError(response)))
      .catch(() => undefined)
      .then((error) => setState({ kind: "failed", error, isChecking: false }));
  };

  const retry = () => {
    setState({ kind: "loading" });
    setAttempt((n) => n + 1);
  };

  return (
    <li className={`tile tile--${state.kind}`}>
      {/* Named by its caption, which a sighted user reads too (no aria-label that would say something else). */}
      <button type="button" className="tile__button" onClick={() => onOpen(image)}>
        <span
          className={`tile__frame${placeholder ? " tile__frame--placeholder" : ""}`}
          style={{
            aspectRatio: `${image.width} / ${image.height}`,
            ...(placeholder ? { backgroundImage: `url("${placeholder}")` } : {}),
          }}
          data-placeholder={placeholder ? "thumbhash" : "none"}
        >
          {state.kind === "failed" ? null : (
            <img
              key={attempt}
              ref={imgRef}
              className="tile__img"
              src={src}
              srcSet={imageSrcSet(image.path, image.width, { f: "auto" })}
              sizes={TILE_SIZES}
              width={image.width}
              height={image.height}
              alt=""
              loading={priority === "lazy" ? "lazy" : "eager"}
              fetchPriority={priority === "high" ? "high" : "auto"}
              decoding={priority === "lazy" ? "async" : "auto"}
              onLoad={() => setState({ kind: "loaded" })}
              onError={handleError}
            />
          )}
          {state.kind === "failed" ? (
            <span className="tile__error" role="alert">
              <strong>{state.error?.title ?? (state.isChecking ? "Image failed" : "Image failed to load")}</strong>
              <span>
                {state.isChecking
                  ? "Checking why…"
                  : state.error
                    ? `HTTP ${state.error.status}${state.error.code ? ` · ${state.error.code}` : ""}`
                    : "The browser could not decode it."}
              </span>
            </span>
          ) : null}
        </span>
        <span className="tile__caption">
          <span className="tile__name">{image.path}</span>
          <span className="tile__meta">
            {formatDimensions(image.width, image.height)} · {formatBytes(image.bytes)}
          </span>
        </span>
      </button>
      {state.kind === "failed" && !state.isChecking ? (
        <button type="button" className="tile__retry button button--small" onClick={retry}>
          Retry
        </button>
      ) : null}
    </li>
  );
}

/** The original's ThumbHash placeholder as a data URL, once fetched (undefined before, and if it fails). */
function usePlaceholder(path: string): string | undefined {
  const [placeholder, setPlaceholder] = useState<{ path: string; dataUrl: string } | undefined>();
  useEffect(() => {
    const controller = new AbortController();
    fetchPlaceholder(path, controller.signal).then(
      (dataUrl) => {
        if (dataUrl !== undefined && !controller.signal.aborted) setPlaceholder({ path, dataUrl });
      },
      () => undefined, // offline, aborted or refused: the shimmer stays
    );
    return () => controller.abort();
  }, [path]);
  return placeholder?.path === path ? placeholder.dataUrl : undefined;
}
