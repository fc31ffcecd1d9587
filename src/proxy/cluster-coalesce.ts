import { randomUUID } from "node:crypto";
import type { ClusterBus } from "../cache/cluster-bus.ts";
import type { RedisConnection } from "../cache/redis-connection.ts";
import type { TierHealth } from "../cache/tier-health.ts";

/** Deletes the lock only if it is still ours (it may have expired and been taken by another instance). */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export interface ClusterCoalescerOptions {
  readonly client: RedisConnection;
  readonly bus: ClusterBus;
  readonly keyPrefix: string;
  readonly health: TierHealth;
  /** Lock lifetime, and the longest a waiter waits before doing the work itself. */
  readonly waitMs: number;
  /** Waiters re-check the Redis tier this often in case a notification was lost. */
  readonly pollMs?: number;
}

export interface ClusterOutcome<T> {
  readonly result: T;
  /** This instance waited for another one and served its stored result. */
  readonly waited: boolean;
}

/**
 * Cluster-wide single flight on top of the per-process Coalescer: of N instances missing one key at once, the one
 * that wins `SET <prefix>lock:<key> <token> NX PX <waitMs>` produces and stores the entry (in the Redis tier), releases
 * the lock and publishes `done`; the others wait for that message (or poll every pollMs), then read the Redis tier.
 *
 * ```text
 * A: SET NX ✓ → lookup (miss) → fetch + transform → store (disk, Redis) → release → PUBLISH done(shared)
 * B: SET NX ✗ → wait ……………………………………………………………………………………………………………… done → GET from Redis → serve
 * ```
 * The winner looks the tier up once more after locking, which closes the race where B missed just before A stored.
 * If the result could not be shared (larger than --redis-max-entry-bytes, or the producer failed) the waiters do
 * the work themselves; if Redis fails or waitMs passes, they do too: coalescing saves work, it never blocks it.
 */
export class ClusterCoalescer {
  readonly #client: RedisConnection;
  readonly #prefix: string;
  readonly #health: TierHealth;
  readonly #waitMs: number;
  readonly #pollMs: number;
  readonly #bus: ClusterBus;
  readonly #waiters = new Map<string, Set<(isShared: boolean) => void>>();
  /** Locks this instance holds now: key → token. */
  readonly #held = new Map<string, string>();
  /** Requests served from another instance's work. */
  waited = 0;
  /** Times this instance held the lock and produced. */
  produced = 0;

  constructor(options: ClusterCoalescerOptions) {
    this.#client = options.client;
    this.#prefix = `${options.keyPrefix}lock:`;
    this.#health = options.health;
    this.#waitMs = options.waitMs;
    this.#pollMs = options.pollMs ?? 200;
    this.#bus = options.bus;
    this.#bus.on((message) => {
      if (message.type !== "done") return;
      const waiting = this.#waiters.get(message.key);
      if (!waiting) return;
      this.#waiters.delete(message.key);
      for (const wake of waiting) wake(message.isShared);
    });
  }

  /**
   * `lookup` reads the shared tier; `produce` does the work and stores it, saying whether the result was shared.
   */
  async run<T>(
    key: string,
    lookup: () => Promise<T | undefined>,
    produce: () => Promise<{ result: T; isShared: boolean }>,
  ): Promise<ClusterOutcome<T>> {
    const deadline = performance.now() + this.#waitMs;
    for (;;) {
      const token = await this.#lock(key);
      if (token === undefined) return { result: (await produce()).result, waited: false }; // Redis unavailable
      if (token !== null) return this.#produceHoldingLock(key, token, lookup, produce);
      const isShared = await this.#waitForDone(key, Math.min(this.#pollMs, deadline - performance.now()));
      if (isShared === false) return { result: (await produce()).result, waited: false };
      const found = await lookup();
      if (found !== undefined) {
        this.waited++;
        return { result: found, waited: true };
      }
      if (performance.now() >= deadline) return { result: (await produce()).result, waited: false };
    }
  }

  async #produceHoldingLock<T>(
    key: string,
    token: string,
    lookup: () => Promise<T | undefined>,
    produce: () => Promise<{ result: T; isShared: boolean }>,
  ): Promise<ClusterOutcome<T>> {
    let isShared = false;
    this.#held.set(key, token);
    try {
      const found = await lookup();
      if (found !== undefined) {
        isShared = true;
        this.waited++;
        return { result: found, waited: true };
      }
      const produced = await produce();
      isShared = produced.isShared;
      this.produced++;
      return { result: produced.result, waited: false };
    } finally {
      // Unless abandon() has already let go of it (then another flight may hold the key by now).
      if (this.#held.get(key) === token) {
        this.#held.delete(key);
        await this.#release(key, token);
        await this.#bus.publish({ type: "done", key, isShared });
      }
    }
  }

  /**
   * A purge abandoned the local flights of matching keys: let go of their locks now rather than when they finish,
   * so that requests after the purge, on any instance, neither wait for work that will store nothing nor read its
   * result. `done` without a shared result sends the instances already waiting to do the work themselves.
   */
  abandon(matches: (key: string) => boolean): void {
    for (const [key, token] of this.#held) {
      if (!matches(key)) continue;
      this.#held.delete(key);
      void this.#release(key, token).then(() => this.#bus.publish({ type: "done", key, isShared: false }));
    }
  }

  /** The lock token when acquired, null when another instance holds it, undefined when Redis is unavailable. */
  async #lock(key: string): Promise<string | null | undefined> {
    if (!this.#health.isAvailable()) return undefined;
    const token = randomUUID();
    try {
      const isSet = await this.#client.set(this.#prefix + key, token, { isNx: true, pxMs: this.#waitMs });
      this.#health.succeed();
      return isSet ? token : null;
    } catch (error) {
      this.#health.fail(error);
      return undefined;
    }
  }

  async #release(key: string, token: string): Promise<void> {
    try {
      await this.#client.eval(RELEASE, { keys: [this.#prefix + key], arguments: [token] });
    } catch (error) {
      this.#health.fail(error); // the lock expires by itself after waitMs
    }
  }

  /** The `done` message's isShared, or undefined after `timeoutMs` (then the caller polls the tier). */
  #waitForDone(key: string, timeoutMs: number): Promise<boolean | undefined> {
    return new Promise((resolve) => {
      let waiting = this.#waiters.get(key);
      if (!waiting) this.#waiters.set(key, (waiting = new Set()));
      const set = waiting;
      const wake = (isShared: boolean | undefined): void => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0 && this.#waiters.get(key) === set) this.#waiters.delete(key);
        resolve(isShared);
      };
      const timer = setTimeout(() => wake(undefined), Math.max(1, timeoutMs));
      set.add(wake);
    });
  }
}
