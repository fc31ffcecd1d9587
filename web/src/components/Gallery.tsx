import type { OriginalImage } from "../lib/api.ts";
import type { HttpErrorDescription } from "../lib/http-error.ts";
import { ImageTile } from "./ImageTile.tsx";
import { HttpErrorNotice, Notice } from "./Notice.tsx";

export type GalleryState =
  | { kind: "loading" }
  | { kind: "error"; error: HttpErrorDescription }
  | { kind: "ready"; images: readonly OriginalImage[] };

/** Skeleton tiles while `/api/images` loads: a 3:2 frame each, the most common photo shape. */
const SKELETON_COUNT = 8;

/**
 * Tiles whose images load eagerly: the first row, where the Largest Contentful Paint is. Columns are ≥ 220 px with
 * 14 px gaps beside the 380 px aside (styles.css): 3 at a 1280 px window, 4 at 1440, 6 at 1920, 2 on phones. Beyond
 * that, eager images would compete with the first, fetchpriority=high, tile for the connection.
 */
export const EAGER_TILES = 6;

/** Every original on the origin, as tiles; loading, empty and error states in place of the grid. */
export function Gallery({
  state,
  onOpen,
  onRetry,
}: {
  state: GalleryState;
  onOpen: (image: OriginalImage) => void;
  onRetry: () => void;
}) {
  const count = state.kind === "ready" ? `${state.images.length} originals` : "";
  return (
    <section id="gallery" className="gallery" aria-labelledby="gallery-title" aria-busy={state.kind === "loading"}>
      <div className="section-head">
        <h2 id="gallery-title">Gallery</h2>
        <span className="section-head__meta">{count}</span>
      </div>
      {state.kind === "loading" ? (
        <ul className="gallery__grid" aria-label="Loading originals">
          {Array.from({ length: SKELETON_COUNT }, (_, i) => (
            <li key={i} className="tile tile--skeleton" aria-hidden="true">
              <span className="tile__frame" style={{ aspectRatio: "3 / 2" }} />
              <span className="tile__caption">
                <span className="skeleton-line" />
              </span>
            </li>
          ))}
        </ul>
      ) : state.kind === "error" ? (
        <HttpErrorNotice
          error={{ ...state.error, title: `Could not list originals: ${state.error.title}` }}
          action={
            <button type="button" className="button" onClick={onRetry}>
              Try again
            </button>
          }
        />
      ) : state.images.length === 0 ? (
        <Notice tone="info" title="No originals yet">
          <p>The origin lists no images. Add some to its directory and reload.</p>
        </Notice>
      ) : (
        <ul className="gallery__grid">
          {state.images.map((image, index) => (
            <ImageTile
              key={image.path}
              image={image}
              priority={index === 0 ? "high" : index < EAGER_TILES ? "eager" : "lazy"}
              onOpen={onOpen}
            />
          ))}
        </ul>
      )}
    </section>
  );
}
