import { useEffect, useState } from "react";
import { fetchVariant, type FailedVariant, type FetchedVariant } from "./variant-fetch.ts";

/** What the stage shows: the variant, the previous one (dimmed) while the next loads, or why it failed. */
export type ShownVariant =
  | { kind: "loading"; previous: FetchedVariant | undefined }
  | { kind: "ok"; variant: FetchedVariant }
  | { kind: "error"; failure: FailedVariant };

/**
 * Fetches `url` (again whenever `reloads` changes), keeping the previous variant on screen meanwhile. A newer URL
 * aborts the older request, and every object URL is revoked once replaced.
 */
export function useVariant(url: string, accept: string, reloads: number): ShownVariant {
  const [shown, setShown] = useState<ShownVariant>({ kind: "loading", previous: undefined });
  useEffect(() => {
    const controller = new AbortController();
    let objectUrl: string | undefined;
    setShown((old) => ({ kind: "loading", previous: old.kind === "ok" ? old.variant : undefined }));
    fetchVariant(url, accept, controller.signal).then(
      (result) => {
        if (result.isOk) {
          objectUrl = result.objectUrl;
          if (controller.signal.aborted) URL.revokeObjectURL(objectUrl);
          else setShown({ kind: "ok", variant: result });
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
  return shown;
}

/** `value`, once it has stayed the same for `delayMs`: a slider dragged across 40 steps makes one request, not 40. */
export function useDebounced<T>(value: T, delayMs: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setSettled(value), delayMs);
    return () => window.clearTimeout(timer);
  }, [value, delayMs]);
  return settled;
}
