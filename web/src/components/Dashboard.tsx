import { useEffect, useId, useState, type ReactNode } from "react";
import { ApiError, fetchStats, type CacheFill, type ProxyStats } from "../lib/api.ts";
import { formatBytes, formatCount, formatDuration, formatPercent, savingRatio } from "../lib/format.ts";
import type { HttpErrorDescription } from "../lib/http-error.ts";
import { appendSample, deriveRates, HISTORY_WINDOW_MS, type StatsSample } from "../lib/stats-history.ts";
import { LineChart } from "./LineChart.tsx";
import { HttpErrorNotice } from "./Notice.tsx";

/** How often the dashboard polls `/api/stats`. */
export const POLL_INTERVAL_MS = 1000;

/** Live proxy counters: polls `/api/stats` every second while the tab is visible. */
export function Dashboard() {
  const [stats, setStats] = useState<ProxyStats | undefined>();
  const [error, setError] = useState<HttpErrorDescription | undefined>();
  const [history, setHistory] = useState<StatsSample[]>([]);
  const [nowMs, setNowMs] = useState(() => Date.now());

  useEffect(() => {
    let controller: AbortController | undefined;
    const poll = async () => {
      if (controller || document.hidden) return; // one request at a time; none while the tab is hidden
      controller = new AbortController();
      try {
        const next = await fetchStats(controller.signal);
        const atMs = Date.now();
        setStats(next);
        setError(undefined);
        setHistory((old) => appendSample(old, next, atMs));
        setNowMs(atMs);
      } catch (caught) {
        if (caught instanceof ApiError) setError(caught.description);
      } finally {
        controller = undefined;
      }
    };
    void poll();
    const timer = window.setInterval(() => void poll(), POLL_INTERVAL_MS);
    return () => {
      window.clearInterval(timer);
      controller?.abort();
    };
  }, []);

  const rates = deriveRates(history);
  return (
    <section id="dashboard" className="panel dashboard" aria-labelledby="dashboard-title">
      <div className="section-head">
        <h2 id="dashboard-title">Proxy, live</h2>
        <span className="section-head__meta">
          {stats ? `up ${formatDuration(stats.uptimeSeconds)}` : ""}
          <span className={`live-dot${error ? " live-dot--off" : stats ? "" : " live-dot--wait"}`} aria-hidden="true" />
        </span>
      </div>
      {error ? <HttpErrorNotice error={{ ...error, title: `Stats unavailable: ${error.title}` }} /> : null}
      {stats ? <StatsView stats={stats} /> : error ? null : <p className="muted">Waiting for the first sample…</p>}
      <div className="dashboard__charts">
        <LineChart
          label="Requests / s"
          points={rates.map((point) => ({ atMs: point.atMs, value: point.requestsPerSecond }))}
          nowMs={nowMs}
          windowMs={HISTORY_WINDOW_MS}
          formatValue={(value) => (value >= 10 ? String(Math.round(value)) : value.toFixed(1))}
        />
        <LineChart
          label="Hit ratio (per second)"
          points={rates.map((point) => ({ atMs: point.atMs, value: point.hitRatio }))}
          nowMs={nowMs}
          windowMs={HISTORY_WINDOW_MS}
          maxValue={1}
          formatValue={(value) => formatPercent(value)}
        />
        <LineChart
          label="Memory (RSS) against the limit"
          points={history.map((sample) => ({ atMs: sample.atMs, value: sample.rssBytes }))}
          nowMs={nowMs}
          windowMs={HISTORY_WINDOW_MS}
          {...(stats && stats.memory.limitBytes > 0 ? { maxValue: stats.memory.limitBytes } : {})}
          formatValue={(value) => formatBytes(value)}
        />
      </div>
    </section>
  );
}

/** The counters of one `/api/stats` answer. Exported for tests. */
export function StatsView({ stats }: { stats: ProxyStats }) {
  const servedId = useId();
  const saving = savingRatio(stats.originalBytesEquivalent, stats.bytesServed);
  return (
    <>
      <dl className="stats">
        <Stat label="Hit ratio" value={formatPercent(stats.hitRatio, 1)} testId="stat-hit-ratio">
          {formatCount(stats.hits)} hits · {formatCount(stats.misses)} misses
        </Stat>
        <Stat label="Requests" value={formatCount(stats.requests)} testId="stat-requests" />
        <Stat label="Origin fetches" value={formatCount(stats.originFetches)} testId="stat-origin-fetches">
          {stats.originErrors > 0 ? `${formatCount(stats.originErrors)} failed` : "no failures"}
        </Stat>
        <Stat label="Coalesced" value={formatCount(stats.coalesced)} testId="stat-coalesced">
          requests that shared one fetch
        </Stat>
        <FreshnessStat stats={stats} />
        <Stat label="Transforms" value={formatCount(stats.transforms)} testId="stat-transforms">
          {stats.transformsInFlight} running · {stats.transformsQueued} queued
        </Stat>
        <Stat label="Rate limited" value={formatCount(stats.rateLimited)} testId="stat-rate-limited">
          {stats.rateLimit.perSecond > 0
            ? `${stats.rateLimit.perSecond}/s, burst ${stats.rateLimit.burst}`
            : "limit off"}
          {stats.shed > 0 ? ` · ${formatCount(stats.shed)} shed (503)` : ""}
          {stats.refusedRequests > 0 ? ` · ${formatCount(stats.refusedRequests)} malformed or oversized refused` : ""}
          {stats.rejectedConnections > 0 ? ` · ${formatCount(stats.rejectedConnections)} connections over the cap` : ""}
        </Stat>
      </dl>
      <div className="meters">
        <MemoryMeter memory={stats.memory} />
        <Meter
          label="Cache"
          fill={stats.cache}
          detail={`variants ${formatBytes(stats.cache.variants.bytes)} (${formatCount(stats.cache.variants.entries)}) · originals ${formatBytes(stats.cache.originals.bytes)} (${formatCount(stats.cache.originals.entries)})`}
        />
        <Meter label="Variants" fill={stats.cache.variants} />
        <Meter label="Originals" fill={stats.cache.originals} />
        <div className="meter">
          <div className="meter__head">
            <span id={servedId}>Bytes served</span>
            <span data-testid="stat-bytes-served">
              {formatBytes(stats.bytesServed)} of {formatBytes(stats.originalBytesEquivalent)}
            </span>
          </div>
          <Bar
            share={stats.originalBytesEquivalent > 0 ? stats.bytesServed / stats.originalBytesEquivalent : 0}
            labelId={servedId}
          />
          <p className="meter__detail">
            {stats.originalBytesEquivalent > 0
              ? `${formatPercent(saving, 1)} less than sending the originals`
              : "nothing served yet"}
          </p>
        </div>
      </div>
    </>
  );
}

/** Revalidations of stale entries (304 / 200), what changed at the origin, stale answers and purges. */
function FreshnessStat({ stats }: { stats: ProxyStats }) {
  const { freshness } = stats;
  const revalidations = freshness.notModified + freshness.modified;
  const details = [
    `${formatCount(freshness.notModified)} not modified (304) · ${formatCount(freshness.modified)} refetched (200)`,
    freshness.originalsChanged > 0 ? `${formatCount(freshness.originalsChanged)} changed at the origin` : "",
    freshness.failed > 0 ? `${formatCount(freshness.failed)} failed` : "",
    `stale served: ${formatCount(freshness.staleWhileRevalidating)} while revalidating · ${formatCount(freshness.staleIfError)} on origin errors`,
    stats.purgedEntries > 0 ? `${formatCount(stats.purgedEntries)} entries purged` : "",
  ].filter((part) => part !== "");
  return (
    <Stat label="Revalidated" value={formatCount(revalidations)} testId="stat-revalidated">
      {details.join(" · ")}
    </Stat>
  );
}

function Stat({
  label,
  value,
  testId,
  children,
}: {
  label: string;
  value: string;
  testId: string;
  children?: ReactNode;
}) {
  return (
    <div className="stat">
      <dt className="stat__label">{label}</dt>
      <dd className="stat__value" data-testid={testId}>
        {value}
      </dd>
      {children ? <dd className="stat__detail">{children}</dd> : null}
    </div>
  );
}

function Meter({ label, fill, detail }: { label: string; fill: CacheFill; detail?: string }) {
  const labelId = useId();
  const share = fill.maxBytes > 0 ? fill.bytes / fill.maxBytes : 0;
  return (
    <div className="meter">
      <div className="meter__head">
        <span id={labelId}>{label}</span>
        <span>
          {formatBytes(fill.bytes)} / {formatBytes(fill.maxBytes)} · {formatCount(fill.entries)}{" "}
          {fill.entries === 1 ? "entry" : "entries"}
        </span>
      </div>
      <Bar share={share} labelId={labelId} />
      {detail ? <p className="meter__detail">{detail}</p> : null}
    </div>
  );
}

/** RSS against --memory-limit, and what fills it. */
function MemoryMeter({ memory }: { memory: ProxyStats["memory"] }) {
  const labelId = useId();
  if (memory.limitBytes <= 0) return null;
  const refused = [
    memory.shed > 0 ? `${formatCount(memory.shed)} shed (503)` : "",
    memory.tooLarge > 0 ? `${formatCount(memory.tooLarge)} too large (413)` : "",
    memory.waiting > 0 ? `${formatCount(memory.waiting)} waiting` : "",
  ].filter((part) => part !== "");
  return (
    <div className="meter" data-testid="memory-meter">
      <div className="meter__head">
        <span id={labelId}>Memory (RSS)</span>
        <span>
          {formatBytes(memory.rssBytes)} / {formatBytes(memory.limitBytes)} limit
        </span>
      </div>
      <Bar share={memory.rssBytes / memory.limitBytes} labelId={labelId} />
      <p className="meter__detail">
        cache {formatBytes(memory.cacheBytes)} · in flight {formatBytes(memory.reservedBytes)} · runtime and slack{" "}
        {formatBytes(memory.overheadBytes)}
        {refused.length > 0 ? ` · ${refused.join(" · ")}` : ""}
      </p>
    </div>
  );
}

/** A role="meter" bar, named by its visible label (`labelId`): a meter without a name is just "meter" to a reader. */
function Bar({ share, labelId }: { share: number; labelId: string }) {
  const clamped = Math.min(1, Math.max(0, share));
  return (
    <div
      className="bar"
      role="meter"
      aria-labelledby={labelId}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Math.round(clamped * 100)}
      aria-valuetext={formatPercent(clamped, 1)}
    >
      <div className="bar__fill" style={{ width: `${clamped * 100}%` }} />
    </div>
  );
}
