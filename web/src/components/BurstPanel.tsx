import { useId, useRef, useState } from "react";
import type { OriginalImage } from "../lib/api.ts";
import { burstUrls, runBurst, type BurstMode, type BurstSummary as Summary } from "../lib/burst.ts";
import { BurstSummary } from "./BurstSummary.tsx";

const MIN_COUNT = 10;
const MAX_COUNT = 500;

/** Fires N variant requests at once to show coalescing, rate limiting and load shedding on the dashboard. */
export function BurstPanel({ images, accept }: { images: readonly OriginalImage[]; accept: string }) {
  const [count, setCount] = useState(100);
  const [mode, setMode] = useState<BurstMode>("same");
  const [path, setPath] = useState<string | undefined>();
  const [isRunning, setIsRunning] = useState(false);
  const [summary, setSummary] = useState<Summary | undefined>();
  const seed = useRef(Math.floor(Math.random() * 10_000));
  const id = useId();
  const image = images.find((candidate) => candidate.path === path) ?? images[0];

  const fire = async () => {
    if (!image || isRunning) return;
    setIsRunning(true);
    seed.current += count + 1; // fresh widths each time, so "same" starts cold and coalesces again
    try {
      setSummary(await runBurst(burstUrls(image.path, count, mode, seed.current, image.width), accept));
    } finally {
      setIsRunning(false);
    }
  };

  return (
    <section id="burst" className="panel burst" aria-labelledby={`${id}-title`}>
      <div className="section-head">
        <h2 id={`${id}-title`}>Burst</h2>
      </div>
      <form
        className="controls"
        onSubmit={(event) => {
          event.preventDefault();
          void fire();
        }}
      >
        <div className="field">
          <span className="field__label" id={`${id}-count`}>
            Requests
          </span>
          <span className="field__pair">
            <input
              type="range"
              min={MIN_COUNT}
              max={MAX_COUNT}
              step={10}
              value={count}
              aria-labelledby={`${id}-count`}
              onChange={(event) => setCount(Number(event.target.value))}
            />
            <input
              type="number"
              min={MIN_COUNT}
              max={MAX_COUNT}
              value={count}
              className="field__number"
              aria-labelledby={`${id}-count`}
              data-testid="burst-count"
              onChange={(event) =>
                setCount(Math.min(MAX_COUNT, Math.max(MIN_COUNT, Math.round(Number(event.target.value) || MIN_COUNT))))
              }
            />
          </span>
        </div>
        <fieldset className="field field--radios">
          <legend className="field__label">Variants</legend>
          <label>
            <input type="radio" name={`${id}-mode`} checked={mode === "same"} onChange={() => setMode("same")} /> One
            new variant, N times
          </label>
          <label>
            <input
              type="radio"
              name={`${id}-mode`}
              checked={mode === "distinct"}
              onChange={() => setMode("distinct")}
            />{" "}
            N different variants
          </label>
        </fieldset>
        {images.length > 1 ? (
          <label className="field">
            <span className="field__label">Original</span>
            <select value={image?.path ?? ""} onChange={(event) => setPath(event.target.value)}>
              {images.map((candidate) => (
                <option key={candidate.path} value={candidate.path}>
                  {candidate.path}
                </option>
              ))}
            </select>
          </label>
        ) : null}
        <button type="submit" className="button button--primary" disabled={!image || isRunning}>
          {isRunning ? "Firing…" : `Fire ${count} requests`}
        </button>
      </form>
      <p className="muted small">
        Small variants (64–1024 px wide) with <code>cache: no-store</code>. Over HTTP/1.1 the browser opens at most 6
        connections to the proxy, so it sees at most 6 of these at the same moment.
      </p>
      {summary ? <BurstSummary summary={summary} /> : null}
    </section>
  );
}
