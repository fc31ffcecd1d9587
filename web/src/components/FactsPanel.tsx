import type { OriginalImage } from "../lib/api.ts";
import { cacheOutcome, type CacheOutcome } from "../lib/cache-status.ts";
import {
  formatBytes,
  formatContentType,
  formatDimensions,
  formatMs,
  formatPercent,
  savingRatio,
} from "../lib/format.ts";
import { parseServerTiming, SERVER_TIMING_PHASES } from "../lib/server-timing.ts";

/** What the viewer learnt about the delivered variant. Dimensions arrive later, once the `<img>` decodes. */
export interface DeliveredFacts {
  readonly bytes: number;
  readonly contentType: string | null;
  readonly width: number | undefined;
  readonly height: number | undefined;
  readonly cacheStatus: string | null;
  readonly xCache: string | null;
  readonly serverTiming: string | null;
  readonly durationMs: number;
}

const OUTCOME_LABELS: Record<CacheOutcome, string> = {
  hit: "Hit",
  miss: "Miss",
  collapsed: "Miss, collapsed",
  unknown: "Unknown",
};

const OUTCOME_HELP: Record<CacheOutcome, string> = {
  hit: "served from the proxy's cache",
  miss: "fetched from the origin and transformed",
  collapsed: "joined another request's in-flight work",
  unknown: "no Cache-Status header",
};

/** Original vs delivered bytes, format and size; the saving; cache status and the Server-Timing breakdown. */
export function FactsPanel({
  original,
  delivered,
  isFailed = false,
}: {
  original: OriginalImage;
  delivered: DeliveredFacts | undefined;
  /** The variant request failed: show dashes, not "loading" dots. */
  isFailed?: boolean;
}) {
  const pending = isFailed ? "–" : "…";
  const saving = delivered ? savingRatio(original.bytes, delivered.bytes) : undefined;
  const outcome = delivered ? cacheOutcome(delivered.cacheStatus, delivered.xCache) : undefined;
  const timings = parseServerTiming(delivered?.serverTiming);
  const phases = [...timings].sort((a, b) => phaseRank(a.name) - phaseRank(b.name));
  const longestMs = Math.max(1e-9, ...phases.map((entry) => entry.durationMs ?? 0));

  return (
    <section className="facts" aria-label="Image facts">
      <dl className="facts__list">
        <div className="facts__row">
          <dt>Original</dt>
          <dd>
            <span data-testid="original-bytes">{formatBytes(original.bytes)}</span>
            <span className="facts__sub">
              {formatDimensions(original.width, original.height)}
              {original.format ? ` · ${original.format.toUpperCase()}` : ""}
            </span>
          </dd>
        </div>
        <div className="facts__row">
          <dt>Delivered</dt>
          <dd>
            <span data-testid="delivered-bytes">{delivered ? formatBytes(delivered.bytes) : pending}</span>
            <span className="facts__sub">
              {delivered ? formatContentType(delivered.contentType) : ""}
              {delivered?.width !== undefined && delivered.height !== undefined
                ? ` · ${formatDimensions(delivered.width, delivered.height)}`
                : ""}
            </span>
          </dd>
        </div>
        <div className="facts__row">
          <dt>Saving</dt>
          <dd>
            {saving === undefined ? (
              pending
            ) : (
              <span data-testid="saving" className={saving >= 0 ? "facts__good" : "facts__bad"}>
                {describeSaving(saving)}
              </span>
            )}
          </dd>
        </div>
        <div className="facts__row">
          <dt>Cache</dt>
          <dd>
            {outcome ? (
              <>
                <span data-testid="cache-status" className={`badge badge--${outcome}`}>
                  {OUTCOME_LABELS[outcome]}
                </span>
                <span className="facts__sub">{OUTCOME_HELP[outcome]}</span>
                {delivered?.cacheStatus ? <code className="facts__raw">{delivered.cacheStatus}</code> : null}
              </>
            ) : (
              pending
            )}
          </dd>
        </div>
        <div className="facts__row">
          <dt>Time</dt>
          <dd>
            {delivered ? (
              <>
                {formatMs(delivered.durationMs)}
                <span className="facts__sub">request to last byte, in this browser</span>
              </>
            ) : (
              pending
            )}
          </dd>
        </div>
      </dl>
      <h3 className="facts__heading">Server-Timing</h3>
      {phases.length === 0 ? (
        <p className="facts__empty">{delivered ? "No Server-Timing header." : pending}</p>
      ) : (
        <ul className="timing" aria-label="Server-Timing breakdown">
          {phases.map((entry) => (
            <li key={entry.name} className={`timing__row timing__row--${entry.name}`}>
              <span className="timing__name" title={entry.description ?? entry.name}>
                {entry.name}
              </span>
              {entry.durationMs === undefined ? (
                <span className="timing__note">{entry.description ?? ""}</span>
              ) : (
                <>
                  <span className="timing__track" aria-hidden="true">
                    <span
                      className="timing__bar"
                      style={{ width: `${Math.max(1, (entry.durationMs / longestMs) * 100)}%` }}
                    />
                  </span>
                  <span className="timing__value">{formatMs(entry.durationMs)}</span>
                </>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function phaseRank(name: string): number {
  const index = (SERVER_TIMING_PHASES as readonly string[]).indexOf(name);
  return index === -1 ? SERVER_TIMING_PHASES.indexOf("total") - 0.5 : index; // unknown metrics go just before `total`
}

/** 0.97 → "97.0% smaller", -0.5 → "50.0% larger", and "same size" when the rounded figure would read 0.0%. */
function describeSaving(saving: number): string {
  if (Math.abs(saving) < 0.0005) return "same size";
  return saving > 0 ? `${formatPercent(saving, 1)} smaller` : `${formatPercent(-saving, 1)} larger`;
}
