import { randomUUID } from "node:crypto";
import { closeRedis } from "./redis-cache.ts";
import type { RedisClient } from "./redis-cache.ts";
import type { TierHealth, TierLogger } from "./tier-health.ts";

/** What instances tell each other over Redis pub/sub. */
export type ClusterMessage =
  /** A coalesced fetch/transform finished; `isShared`: its result is in the Redis tier. */
  | { readonly type: "done"; readonly key: string; readonly isShared: boolean }
  /** An admin purged `path` (null: everything); every instance drops it from memory and its local disk. */
  | { readonly type: "purge"; readonly path: string | null };

interface Envelope {
  readonly from: string;
  readonly message: ClusterMessage;
}

/**
 * One pub/sub channel (`<prefix>events`) on a dedicated subscriber connection (RESP2 subscribers can run no other
 * command). node-redis re-subscribes after a reconnect; messages sent while an instance is cut off are lost, which
 * coalescing tolerates (waiters also poll) and purges accept (entries also expire by TTL).
 */
export class ClusterBus {
  /** Tells this instance's own messages apart from the others'. */
  readonly instanceId = randomUUID();
  readonly #client: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #channel: string;
  readonly #health: TierHealth;
  readonly #handlers: ((message: ClusterMessage, isOwn: boolean) => void)[] = [];

  constructor(options: { client: RedisClient; keyPrefix: string; health: TierHealth; log: TierLogger }) {
    this.#client = options.client;
    this.#channel = `${options.keyPrefix}events`;
    this.#health = options.health;
    // The subscriber keeps node-redis's offline queue, so SUBSCRIBE waits for the first connection.
    this.#subscriber = options.client.duplicate({ disableOfflineQueue: false });
    this.#subscriber.on("error", () => undefined); // the main connection logs outages
    this.#subscriber.connect().catch(() => undefined);
    this.#subscriber
      .subscribe(this.#channel, (raw) => this.#receive(raw))
      .catch((error: unknown) => {
        options.log.warn({ err: String(error) }, "cluster bus: subscribe failed");
      });
  }

  /** Resolves once SUBSCRIBE is active (tests and startup ordering); never rejects. */
  async ready(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      try {
        const counts = await this.#client.pubSubNumSub(this.#channel);
        if ((counts[this.#channel] ?? 0) > 0 && this.#subscriber.isReady) return true;
      } catch {
        /* not connected yet */
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return false;
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

  async close(): Promise<void> {
    await closeRedis(this.#subscriber);
  }

  #receive(raw: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(raw) as Envelope;
    } catch {
      return;
    }
    for (const handler of this.#handlers) handler(envelope.message, envelope.from === this.instanceId);
  }
}
