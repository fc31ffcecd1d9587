import { useId, useRef, useState, type KeyboardEvent, type PointerEvent } from "react";
import type { FocalPoint, Region } from "imagika/url";
import type { OriginalImage } from "../lib/api.ts";
import { imageSrcSet, imageUrl } from "../lib/image-url.ts";
import { fractionsToRegion, pointToFraction } from "../lib/playground.ts";

/** A pointer that moves less than this (CSS px) between down and up clicked: it sets the focal point. */
export const DRAG_THRESHOLD_PX = 4;
/** Arrow keys move the focal point by this fraction (Shift: 10 times less). */
const KEY_STEP = 0.05;
const ARROWS: Record<string, readonly [number, number]> = {
  ArrowLeft: [-1, 0],
  ArrowRight: [1, 0],
  ArrowUp: [0, -1],
  ArrowDown: [0, 1],
};

type Drag = { readonly from: FocalPoint; readonly to: FocalPoint; readonly isDragging: boolean };

/**
 * The whole original, small: a click sets the focal point, a drag draws the crop (both in the original's
 * coordinates, which is what the proxy reads: the result on the stage may be cropped, turned or padded). Arrow keys
 * move the focal point too.
 */
export function SourcePicker({
  image,
  focalPoint,
  crop,
  onFocalPoint,
  onCrop,
}: {
  image: OriginalImage;
  focalPoint: FocalPoint | undefined;
  crop: Region | undefined;
  onFocalPoint: (point: FocalPoint) => void;
  onCrop: (region: Region) => void;
}) {
  const captionId = useId();
  const surfaceRef = useRef<HTMLDivElement>(null);
  const [drag, setDrag] = useState<Drag | undefined>();
  const start = useRef<{ x: number; y: number } | undefined>(undefined);

  const fractionAt = (event: PointerEvent<HTMLDivElement>): FocalPoint | undefined => {
    const rect = surfaceRef.current?.getBoundingClientRect();
    return rect ? pointToFraction({ x: event.clientX, y: event.clientY }, rect) : undefined;
  };

  const onPointerDown = (event: PointerEvent<HTMLDivElement>) => {
    if (event.button !== 0) return;
    const point = fractionAt(event);
    if (!point) return;
    event.preventDefault(); // no text selection or native image drag while drawing
    event.currentTarget.setPointerCapture?.(event.pointerId);
    start.current = { x: event.clientX, y: event.clientY };
    setDrag({ from: point, to: point, isDragging: false });
  };

  const onPointerMove = (event: PointerEvent<HTMLDivElement>) => {
    const origin = start.current;
    const point = fractionAt(event);
    if (!origin || !point) return;
    const moved = Math.hypot(event.clientX - origin.x, event.clientY - origin.y) >= DRAG_THRESHOLD_PX;
    setDrag((old) => (old ? { from: old.from, to: point, isDragging: old.isDragging || moved } : old));
  };

  const onPointerUp = (event: PointerEvent<HTMLDivElement>) => {
    const origin = start.current;
    const point = fractionAt(event);
    start.current = undefined;
    setDrag(undefined);
    if (!origin || !point || !drag) return;
    const isDrag =
      drag.isDragging || Math.hypot(event.clientX - origin.x, event.clientY - origin.y) >= DRAG_THRESHOLD_PX;
    if (isDrag) onCrop(fractionsToRegion(drag.from, point, image));
    else onFocalPoint(point);
  };

  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    const arrow = ARROWS[event.key];
    if (!arrow) return;
    event.preventDefault();
    const step = event.shiftKey ? KEY_STEP / 10 : KEY_STEP;
    const from = focalPoint ?? { x: 0.5, y: 0.5 };
    const move = (value: number, by: number) =>
      Math.round(Math.min(1, Math.max(0, value + by * step)) * 10_000) / 10_000;
    onFocalPoint({ x: move(from.x, arrow[0]), y: move(from.y, arrow[1]) });
  };

  const shownCrop = drag?.isDragging ? fractionsToRegion(drag.from, drag.to, image) : crop;
  return (
    <figure className="picker">
      <div
        ref={surfaceRef}
        className="picker__surface"
        style={{ aspectRatio: `${image.width} / ${image.height}` }}
        role="application"
        tabIndex={0}
        aria-label="Source image: click for the focal point, drag for a crop, arrow keys move the focal point"
        aria-describedby={captionId}
        data-testid="source-picker"
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onPointerUp={onPointerUp}
        onPointerCancel={() => {
          start.current = undefined;
          setDrag(undefined);
        }}
        onKeyDown={onKeyDown}
      >
        <img
          className="picker__img"
          src={imageUrl(image.path, { w: Math.min(480, image.width), f: "auto" })}
          srcSet={imageSrcSet(image.path, image.width, { f: "auto" })}
          sizes="300px"
          alt=""
          draggable={false}
        />
        {shownCrop ? (
          <span
            className={`picker__crop${drag?.isDragging ? " picker__crop--drawing" : ""}`}
            data-testid="picker-crop"
            style={{
              left: percent(shownCrop.left / image.width),
              top: percent(shownCrop.top / image.height),
              width: percent(shownCrop.width / image.width),
              height: percent(shownCrop.height / image.height),
            }}
          />
        ) : null}
        {focalPoint ? (
          <span
            className="picker__focus"
            data-testid="picker-focus"
            style={{ left: percent(focalPoint.x), top: percent(focalPoint.y) }}
          />
        ) : null}
      </div>
      <figcaption id={captionId} className="picker__caption">
        Click: focal point · drag: crop
      </figcaption>
    </figure>
  );
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 100_000) / 1000}%`;
}
