import { useId, useState } from "react";
import { purgeCache, type AdminResult } from "../lib/api.ts";

/** Admin token (kept in this tab's sessionStorage) and "Purge cache" (`DELETE /api/cache`). */
export function AdminPanel({ token, onTokenChange }: { token: string; onTokenChange: (token: string) => void }) {
  const [result, setResult] = useState<AdminResult | undefined>();
  const [isRunning, setIsRunning] = useState(false);
  const id = useId();

  const purgeAll = async () => {
    setIsRunning(true);
    try {
      setResult(await purgeCache(token));
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
          void purgeAll();
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
        <button type="submit" className="button button--danger" disabled={isRunning}>
          {isRunning ? "Purging…" : "Purge cache"}
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
