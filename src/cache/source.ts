import type { Validators } from "../fetcher/fetcher.ts";

/** What a Source is made from: the origin's facts about one version of an original. */
export interface SourceInit {
  /** etagOf() of the original's bytes, or a function computing it on first use (hashing 3 MB takes ~2 ms). */
  readonly etag: string | (() => string);
  readonly freshUntilMs: number;
  /** How long the origin said this version stays fresh (ms; Infinity: until evicted); kept when a 304 says nothing. */
  readonly lifetimeMs: number;
  readonly validators: Validators;
  readonly mustRevalidate: boolean;
  /** The origin said no-store or private: neither the original nor any variant of it is kept in any tier. */
  readonly isNoStore?: boolean;
}

/**
 * One version of an original: which bytes (their ETag), until when they are fresh, and how to ask the origin whether
 * they changed. In a process, the original's entry and every variant made from those bytes share ONE Source object:
 *
 * ```text
 *   memory originals   o:a.jpg ─────────┐
 *   memory variants    v:a.jpg?w=200 ───┼──► Source { etag "X…", freshUntilMs, validators, isReplaced }
 *                      v:a.jpg?w=800 ───┘        ▲ a 304 moves freshUntilMs: all three are fresh again (O(1))
 *                                                 └ new bytes set isReplaced: none of them is ever served again
 * ```
 * so a memory hit checks freshness with one field read (`freshUntilMs > now`), and a revalidation or a change reaches
 * every variant at once. Disk and Redis entries carry the same facts in their metadata (entry-codec.ts); the proxy
 * joins them to the process's Source of their path when it reads them.
 */
export class Source {
  /** Epoch ms (the proxy's clock) until which the bytes are fresh; -Infinity once replaced. */
  freshUntilMs: number;
  lifetimeMs: number;
  validators: Validators;
  mustRevalidate: boolean;
  readonly isNoStore: boolean;
  /** The origin has other bytes now: entries of this version must not be served, not even stale. */
  isReplaced = false;
  /** When the last revalidation failed (the origin down): stale answers go out at once for a while. */
  failedAtMs: number | undefined;
  /** The status to report for that failure (RFC 9211 fwd-status): the origin's 5xx, else 502 or 504. */
  failedStatus = 502;
  #etag: string | (() => string);

  constructor(init: SourceInit) {
    this.#etag = init.etag;
    this.freshUntilMs = init.freshUntilMs;
    this.lifetimeMs = init.lifetimeMs;
    this.validators = init.validators;
    this.mustRevalidate = init.mustRevalidate;
    this.isNoStore = init.isNoStore ?? false;
  }

  /** etagOf() of the bytes; computed once, and the function (which holds the bytes) is let go of. */
  get etag(): string {
    if (typeof this.#etag === "function") this.#etag = this.#etag();
    return this.#etag;
  }

  /** A revalidation failed at `atMs` with `fwdStatus`: the failure stale-if-error answers report, until one succeeds. */
  noteFailure(atMs: number, fwdStatus: number): void {
    this.failedAtMs = atMs;
    this.failedStatus = fwdStatus;
  }

  /** Retires this version: every entry made from it is dead. */
  replace(): void {
    this.isReplaced = true;
    this.freshUntilMs = -Infinity;
  }
}
