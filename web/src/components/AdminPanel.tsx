import { useId, useState } from "react";
import { purgeCache, type AdminResult, type PurgeTarget } from "../lib/api.ts";

/**
 * Admin token (kept in this tab's sessionStorage) and purges: every path starting with a prefix
 * (`DELETE /api/cache?prefix=`), or everything (`DELETE /api/cache`). The prefix is a plain string match, so
 * "albums/2024" also takes "albums/2024-old/…"; an empty prefix purges nothing (everything has its own button).
 * `purge` is the call that does it (purgeCache; tests hand in their own).
 */
export function AdminPanel({
  token,
  onTokenChange,
  purge = purgeCache,
}: {
  token: string;
  onTokenChange: (token: string) => void;
  purge?: (token: string, target: PurgeTarget) => Promise<AdminResult>;
}) {
  const [result, setResult] = useState<AdminResult | undefined>();
  const [isRunning, setIsRunning] = useState(false);
  const [prefix, setPrefix] = useState("");
  const id = useId();

  const run = async (target: PurgeTarget) => {
    setIsRunning(true);
    try {
      setResult(await purge(token, target));
    } finally {
      setIsRunning(false);
    }
  };

  return (
    <section id="admin" className="panel admin" aria-labelledby={`${id}-title`}>
      <div className="section-head">
        <h2 id={`${id}-title`}>Admin</h2>
      </div>
      <form
        className="controls"
        onSubmit={(event) => {
          event.preventDefault();
          if (prefix !== "") void run({ kind: "prefix", prefix });
        }}
      >
        <label className="field">
          <span className="field__label">Admin token</span>
          <input
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={token}
            placeholder="Bearer token"
            onChange={(event) => onTokenChange(event.target.value)}
          />
        </label>
        <label className="field">
          <span className="field__label">Path prefix</span>
          <input
            type="text"
            autoComplete="off"
            spellCheck={false}
            value={prefix}
            placeholder="albums/2024/"
            onChange={(event) => setPrefix(event.target.value)}
          />
        </label>
        <button type="submit" className="button" disabled={isRunning || prefix === ""}>
          {isRunning ? "Purging…" : "Purge prefix"}
        </button>
        <button
          type="button"
          className="button button--danger"
          disabled={isRunning}
          onClick={() => void run({ kind: "all" })}
        >
          Purge everything
        </button>
      </form>
      {result ? (
        <p className={`admin-result admin-result--${result.isOk ? "ok" : "error"}`} role="status">
          {result.message}
        </p>
      ) : null}
    </section>
  );
}
