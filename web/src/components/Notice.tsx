import type { ReactNode } from "react";
import type { HttpErrorDescription } from "../lib/http-error.ts";

/** A clear error/empty/info block in place of a broken image or an empty area. */
export function Notice({
  tone,
  title,
  children,
  action,
}: {
  tone: "error" | "info" | "warning";
  title: string;
  children?: ReactNode;
  action?: ReactNode;
}) {
  return (
    <div className={`notice notice--${tone}`} role={tone === "error" ? "alert" : "status"}>
      <p className="notice__title">{title}</p>
      {children ? <div className="notice__body">{children}</div> : null}
      {action ? <div className="notice__action">{action}</div> : null}
    </div>
  );
}

/** An HTTP error from the proxy: status and code, then the proxy's own message. */
export function HttpErrorNotice({ error, action }: { error: HttpErrorDescription; action?: ReactNode }) {
  const status = error.status === 0 ? "no response" : `HTTP ${error.status}`;
  return (
    <Notice
      tone={error.status === 429 || error.status === 503 ? "warning" : "error"}
      title={error.title}
      action={action}
    >
      <p>{error.detail}</p>
      <p className="notice__meta">
        {status}
        {error.code ? ` · ${error.code}` : ""}
        {error.retryAfterSeconds !== undefined ? ` · Retry-After ${error.retryAfterSeconds} s` : ""}
      </p>
    </Notice>
  );
}
