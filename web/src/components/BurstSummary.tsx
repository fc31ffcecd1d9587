import type { BurstSummary as Summary } from "../lib/burst.ts";
import { formatCount, formatMs } from "../lib/format.ts";

/** What a finished burst got back: served, coalesced, rate limited, shed and other failures. */
export function BurstSummary({ summary }: { summary: Summary }) {
  const served = summary.ok - summary.coalesced;
  const otherErrors = [...summary.otherErrors.entries()].sort(([a], [b]) => a - b);
  const otherCount = otherErrors.reduce((sum, [, count]) => sum + count, 0) + summary.networkErrors;
  const segments = [
    { key: "served", count: served },
    { key: "coalesced", count: summary.coalesced },
    { key: "limited", count: summary.rateLimited },
    { key: "shed", count: summary.overloaded },
    { key: "failed", count: otherCount },
  ].filter((segment) => segment.count > 0);

  return (
    <div className="burst-summary" role="status" aria-label="Burst result">
      <div className="stack-bar" aria-hidden="true">
        {segments.map((segment) => (
          <span
            key={segment.key}
            className={`stack-bar__part stack-bar__part--${segment.key}`}
            style={{ flexGrow: segment.count }}
          />
        ))}
      </div>
      <dl className="burst-summary__list">
        <div className="burst-row burst-row--served">
          <dt>Served (200)</dt>
          <dd data-testid="burst-ok">{formatCount(summary.ok)}</dd>
        </div>
        <div className="burst-row burst-row--coalesced">
          <dt>of which coalesced</dt>
          <dd data-testid="burst-coalesced">{formatCount(summary.coalesced)}</dd>
        </div>
        <div className="burst-row burst-row--hits">
          <dt>of which cache hits</dt>
          <dd data-testid="burst-hits">{formatCount(summary.hits)}</dd>
        </div>
        <div className="burst-row burst-row--limited">
          <dt>Rate limited (429)</dt>
          <dd data-testid="burst-rate-limited">
            {formatCount(summary.rateLimited)}
            {summary.retryAfterSeconds !== undefined ? (
              <span className="burst-row__note"> Retry-After {summary.retryAfterSeconds} s</span>
            ) : null}
          </dd>
        </div>
        <div className="burst-row burst-row--shed">
          <dt>Overloaded (503)</dt>
          <dd data-testid="burst-overloaded">{formatCount(summary.overloaded)}</dd>
        </div>
        <div className="burst-row burst-row--failed">
          <dt>Other errors</dt>
          <dd data-testid="burst-other">
            {otherCount === 0
              ? "0"
              : [
                  ...otherErrors.map(([status, count]) => `${status} × ${count}`),
                  ...(summary.networkErrors > 0 ? [`no response × ${summary.networkErrors}`] : []),
                ].join(", ")}
          </dd>
        </div>
      </dl>
      <p className="muted">
        {formatCount(summary.total)} requests in {formatMs(summary.wallMs)}; slowest {formatMs(summary.slowestMs)}.
      </p>
    </div>
  );
}
