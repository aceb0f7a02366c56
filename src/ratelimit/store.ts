/** What the rate-limit middleware needs from where buckets live: process memory or Redis. */
import type { BucketPolicy, TakeResult } from "./token-bucket.ts";

/**
 * Buckets by key. `take` is atomic per key: concurrent takes on one key never spend the same token twice.
 * Implementations: {@link MemoryStore} (one process), {@link RedisStore} (shared by every process using one Redis).
 */
export interface RateLimitStore {
  /**
   * Takes one token from the bucket for `key` (created full under `policy` if missing). Throws or rejects if the
   * store fails. A store that answers at once (memory) returns the result itself, sparing every request a promise.
   */
  take(key: string, policy: BucketPolicy): TakeResult | Promise<TakeResult>;
  /** Releases connections and memory; the store is unusable afterwards. */
  close(): Promise<void>;
}

/** The store is closed, or cannot answer; the middleware treats this like any other store failure. */
export class RateLimitStoreError extends Error {
  override name = "RateLimitStoreError";
}
