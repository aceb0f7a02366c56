/** Buckets in process memory: exact and fast, but each server process has its own (use RedisStore to share). */
import { RateLimitStoreError, type RateLimitStore } from "./store.ts";
import { compilePolicy, msUntilFull, take, type BucketPolicy, type BucketState, type TakeResult } from "./token-bucket.ts";

export type MemoryStoreOptions = {
  /** Most buckets kept at once; beyond it the least recently used is forgotten. Default 10_000. */
  maxBuckets?: number;
  /** The clock, in milliseconds. Default `Date.now`; tests pass a fake one. */
  now?: () => number;
};

type Entry = { state: BucketState; fullAtMs: number };

// Idle buckets looked at per take. Two per take removes them at least as fast as traffic creates them.
const SWEEP_PER_TAKE = 2;

/**
 * Token buckets in a Map, bounded.
 *
 * A bucket that has refilled to full is the same as no bucket, so idle buckets are dropped as traffic goes by
 * (a couple of the least recently used per take), and memory follows the number of clients *recently* seen.
 * When more than `maxBuckets` keys are active at once, the least recently used bucket is forgotten: that client
 * gets a full bucket back, so the bound errs on the side of letting requests through, never of refusing them.
 *
 * @param {MemoryStoreOptions} [options]
 * @param {number} [options.maxBuckets=10_000] - Most buckets kept at once.
 * @param {() => number} [options.now=Date.now] - The clock, in milliseconds.
 * @throws {RangeError} At construction, if maxBuckets is not an integer >= 1.
 *
 * @example
 * ```ts
 * const store = new MemoryStore({ maxBuckets: 50_000 })
 * app.use(rateLimit({ store, identify: (c) => ({ key: clientIp(c), policy: { capacity: 60, refillPerSecond: 1 } }) }))
 * ```
 */
export class MemoryStore implements RateLimitStore {
  readonly maxBuckets: number;
  readonly #now: () => number;
  // A Map iterates in insertion order; re-inserting on every use keeps it in least-recently-used order.
  readonly #buckets = new Map<string, Entry>();
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    const { maxBuckets = 10_000, now = Date.now } = options;
    if (!Number.isSafeInteger(maxBuckets) || maxBuckets < 1) throw new RangeError(`MemoryStore: maxBuckets must be an integer >= 1; got ${String(maxBuckets)}`);
    if (typeof now !== "function") throw new TypeError("MemoryStore: now must be a function returning milliseconds");
    this.maxBuckets = maxBuckets;
    this.#now = now;
  }

  /** Buckets held now (full ones not yet swept included). */
  get size(): number {
    return this.#buckets.size;
  }

  take(key: string, policy: BucketPolicy): TakeResult {
    if (this.#closed) throw new RateLimitStoreError("MemoryStore is closed");
    const compiled = compilePolicy(policy);
    const now = this.#now();
    const entry = this.#buckets.get(key);
    const { state, result } = take(entry?.state, compiled, now);
    this.#buckets.delete(key);
    this.#sweep(now);
    this.#buckets.set(key, { state, fullAtMs: state.atMs + msUntilFull(state.units, compiled) });
    while (this.#buckets.size > this.maxBuckets) {
      const oldest = this.#buckets.keys().next();
      if (oldest.done) break;
      this.#buckets.delete(oldest.value);
    }
    return result;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#buckets.clear();
  }

  /** Drops the least recently used buckets if they are full by now: forgetting them changes nothing. */
  #sweep(now: number): void {
    for (let i = 0; i < SWEEP_PER_TAKE; i++) {
      const oldest = this.#buckets.entries().next();
      if (oldest.done || oldest.value[1].fullAtMs > now) return;
      this.#buckets.delete(oldest.value[0]);
    }
  }
}
