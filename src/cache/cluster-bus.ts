import { randomUUID } from "node:crypto";
import { withTimeout } from "./redis-connection.ts";
import type { RedisConnection } from "./redis-connection.ts";
import type { TierHealth, TierLogger } from "./tier-health.ts";

/** What instances tell each other over Redis pub/sub. */
export type ClusterMessage =
  /** A coalesced fetch/transform finished; `isShared`: its result is in the Redis tier. */
  | { readonly type: "done"; readonly key: string; readonly isShared: boolean }
  /** An admin purged `path` (null: everything); every instance drops it from memory and its local disk. */
  | { readonly type: "purge"; readonly path: string | null }
  /**
   * An admin purged every path starting with `prefix` (never empty: that is `purge` with null). A separate type, so
   * that instances of an older version, which ignore unknown types, do not read it as a purge of everything.
   */
  | { readonly type: "purge-prefix"; readonly prefix: string };

interface Envelope {
  readonly from: string;
  readonly message: ClusterMessage;
}

/** At most one warning about malformed messages (or failing handlers) per minute: a bad publisher may send thousands. */
const WARN_INTERVAL_MS = 60_000;

/**
 * The envelope when `raw` is one (every field of the right type), else undefined. Anything may arrive on the channel:
 * an instance of another version, a person with redis-cli, a bug; none of it may reach the handlers unchecked.
 */
function parseEnvelope(raw: string): Envelope | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!isRecord(value) || typeof value.from !== "string") return undefined;
  const message = value.message;
  if (!isRecord(message)) return undefined;
  switch (message.type) {
    case "done":
      return typeof message.key === "string" && typeof message.isShared === "boolean"
        ? { from: value.from, message: { type: "done", key: message.key, isShared: message.isShared } }
        : undefined;
    case "purge":
      return typeof message.path === "string" || message.path === null
        ? { from: value.from, message: { type: "purge", path: message.path } }
        : undefined;
    case "purge-prefix":
      return typeof message.prefix === "string" && message.prefix !== ""
        ? { from: value.from, message: { type: "purge-prefix", prefix: message.prefix } }
        : undefined;
    default:
      return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Counts events and lets one warning through per WARN_INTERVAL_MS, reporting how many happened since the last. */
class WarnLimiter {
  readonly #now: () => number;
  #count = 0;
  #lastWarnMs = -Infinity;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** The count to report (this event included) when a warning is due, else undefined. */
  next(): number | undefined {
    this.#count++;
    const now = this.#now();
    if (now - this.#lastWarnMs < WARN_INTERVAL_MS) return undefined;
    this.#lastWarnMs = now;
    const count = this.#count;
    this.#count = 0;
    return count;
  }
}

/**
 * One pub/sub channel (`<prefix>events`) on a dedicated subscriber connection (RESP2 subscribers can run no other
 * command). node-redis re-subscribes after a reconnect; messages sent while an instance is cut off are lost, which
 * coalescing tolerates (waiters also poll) and purges accept (entries also expire by TTL).
 */
export class ClusterBus {
  /** Tells this instance's own messages apart from the others'. */
  readonly instanceId = randomUUID();
  readonly #client: RedisConnection;
  readonly #subscribed: Promise<boolean>;
  readonly #channel: string;
  readonly #health: TierHealth;
  readonly #handlers: ((message: ClusterMessage, isOwn: boolean) => void)[] = [];
  readonly #log: TierLogger;
  readonly #malformed: WarnLimiter;
  readonly #handlerFailures: WarnLimiter;

  constructor(options: {
    client: RedisConnection;
    keyPrefix: string;
    health: TierHealth;
    log: TierLogger;
    /** Clock in ms for the warning rate limit (tests); defaults to performance.now. */
    now?: () => number;
  }) {
    this.#client = options.client;
    this.#log = options.log;
    const now = options.now ?? (() => performance.now());
    this.#malformed = new WarnLimiter(now);
    this.#handlerFailures = new WarnLimiter(now);
    this.#channel = `${options.keyPrefix}events`;
    this.#health = options.health;
    this.#subscribed = options.client.subscribe(this.#channel, (raw) => this.#receive(raw));
  }

  /**
   * True once SUBSCRIBE is active, false if `timeoutMs` passes first (tests and startup ordering); never rejects.
   * (PUBSUB NUMSUB cannot tell: on a cluster it counts only the subscribers of the node it asks.)
   */
  ready(timeoutMs: number): Promise<boolean> {
    return withTimeout(this.#subscribed, timeoutMs);
  }

  on(handler: (message: ClusterMessage, isOwn: boolean) => void): void {
    this.#handlers.push(handler);
  }

  /** Fire-and-forget in effect: a failure is counted on the Redis tier, never thrown. */
  async publish(message: ClusterMessage): Promise<void> {
    if (!this.#health.isAvailable()) return;
    try {
      await this.#client.publish(this.#channel, JSON.stringify({ from: this.instanceId, message } satisfies Envelope));
    } catch (error) {
      this.#health.fail(error);
    }
  }

  /**
   * Runs inside node-redis's reply decoder: whatever throws here is caught there and the decoder is reset, dropping
   * every other message of the same socket read (a valid purge published right behind a bad one was lost). So
   * nothing may throw: malformed messages are dropped (and counted), and each handler runs in its own try.
   */
  #receive(raw: string): void {
    const envelope = parseEnvelope(raw);
    if (!envelope) {
      const dropped = this.#malformed.next();
      if (dropped !== undefined)
        this.#log.warn({ dropped, bytes: raw.length }, "cluster bus: dropped malformed messages");
      return;
    }
    const isOwn = envelope.from === this.instanceId;
    for (const handler of this.#handlers) {
      try {
        handler(envelope.message, isOwn);
      } catch (error) {
        const failures = this.#handlerFailures.next();
        if (failures !== undefined)
          this.#log.warn({ failures, type: envelope.message.type, err: String(error) }, "cluster bus: handler failed");
      }
    }
  }
}
