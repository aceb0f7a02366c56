/**
 * Buckets in Redis, shared by every server process that points at the same Redis: one limit per key however many
 * machines serve it. Each take is one Lua script, so it is atomic, and it reads Redis's clock, so servers whose
 * clocks disagree still agree on the bucket.
 */
import type { RedisClient } from "bun";
import { createHash } from "node:crypto";
import { RateLimitStoreError, type RateLimitStore } from "./store.ts";
import { compilePolicy, summarize, type BucketPolicy, type TakeResult } from "./token-bucket.ts";

export type RedisStoreOptions = {
  /** Where Redis is, e.g. `redis://127.0.0.1:6379` (or rediss:// for TLS, with user:password@ if needed). */
  url: string;
  /** Put before every key, so buckets do not collide with other data in the same Redis. Default "ratelimit:". */
  prefix?: string;
  /**
   * Longest a take may wait, connecting included, before it rejects, in milliseconds. Default 1000. A limiter
   * that hangs would hang every request, so a Redis that is down, unreachable or stuck counts as a failure
   * (and the middleware then lets the request through, or answers 503, as configured).
   */
  timeoutMs?: number;
};

/**
 * The bucket arithmetic of token-bucket.ts (`refill`, then take one token), in Lua, on a hash {u, p, t}:
 * units, units per token and the time in ms. Every number stays an integer below 2^53, so Lua's doubles are
 * exact, and numbers are written back with %d because Lua's tostring would round them to 14 digits.
 *
 * KEYS[1] the bucket; ARGV: capacity units, units per token, units per ms.
 * Returns {allowed (0/1), units left, now in ms}.
 */
export const TAKE_SCRIPT = `
local cap = tonumber(ARGV[1])
local per = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local units = cap
local saved = redis.call('HMGET', KEYS[1], 'u', 'p', 't')
if saved[1] and saved[2] and saved[3] then
  units = tonumber(saved[1])
  local savedPer = tonumber(saved[2])
  if savedPer ~= per then units = math.floor(units / savedPer) * per end
  if units > cap then units = cap end
  local elapsed = now - tonumber(saved[3])
  if elapsed > 0 then
    local missing = cap - units
    if elapsed >= math.ceil(missing / rate) then units = cap else units = units + elapsed * rate end
  end
end
local allowed = 0
if units >= per then
  units = units - per
  allowed = 1
end
redis.call('HSET', KEYS[1], 'u', string.format('%d', units), 'p', string.format('%d', per), 't', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil((cap - units) / rate)))
return {allowed, units, now}
`;

const SCRIPT_SHA = createHash("sha1").update(TAKE_SCRIPT).digest("hex");

/**
 * Token buckets in Redis (7 or later), taken atomically by one Lua script.
 *
 * - The script is loaded with SCRIPT LOAD on every new connection and run with EVALSHA; if Redis has lost it
 *   (SCRIPT FLUSH, a restart, a fail-over) the take is retried once with EVAL, which also caches it again.
 * - Time is Redis's (`TIME`), so many server processes share one consistent limit whatever their own clocks say.
 * - Each bucket expires (PEXPIRE) when it would be full again: a full bucket is the same as none, so idle
 *   clients cost no memory.
 * - Failures reject promptly: no offline queue, no silent reconnect loop; each take after a failure tries to
 *   connect again, so the store recovers as soon as Redis is back. `timeoutMs` bounds every take.
 *
 * @param {RedisStoreOptions} options
 * @param {string} options.url - redis://, rediss://, redis+unix:// … URL.
 * @param {string} [options.prefix="ratelimit:"] - Key prefix.
 * @param {number} [options.timeoutMs=1000] - Longest a take may wait, connecting included.
 * @throws {TypeError} At construction, if the URL is not a Redis URL or the prefix is not a string.
 * @throws {RangeError} At construction, if timeoutMs is not a positive integer.
 *
 * @example
 * ```ts
 * const store = new RedisStore({ url: config.REDIS_URL })
 * app.use(rateLimit({ store, identify: (c) => ({ key: c.get("apiKey")?.name ?? clientIp(c), policy }) }))
 * process.on("SIGTERM", () => store.close())
 * ```
 */
export class RedisStore implements RateLimitStore {
  readonly prefix: string;
  readonly timeoutMs: number;
  readonly #client: RedisClient;
  #connecting: Promise<void> | undefined;
  #closed = false;

  constructor(options: RedisStoreOptions) {
    const { url, prefix = "ratelimit:", timeoutMs = 1000 } = options ?? ({} as RedisStoreOptions);
    if (typeof url !== "string" || !/^(redis|rediss|valkey|valkeys)(\+tls)?(\+unix)?:\/\//.test(url)) {
      throw new TypeError(`RedisStore: url must be a redis:// or rediss:// URL; got ${JSON.stringify(url)}`);
    }
    if (typeof prefix !== "string") throw new TypeError("RedisStore: prefix must be a string");
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) throw new RangeError(`RedisStore: timeoutMs must be an integer >= 1; got ${String(timeoutMs)}`);
    this.prefix = prefix;
    this.timeoutMs = timeoutMs;
    // Bun's built-in client, reached through the global so this module still loads on Node.js.
    if (typeof Bun === "undefined") throw new TypeError("RedisStore uses Bun's built-in Redis client: run the server with Bun to use REDIS_URL");
    this.#client = new Bun.RedisClient(url, {
      // An unreachable host fails the connect within the take's own deadline rather than after 10 s.
      connectionTimeout: timeoutMs,
      // Bun's own reconnect loop queues or refuses commands for up to maxRetries backoffs and then gives up for
      // good; connecting ourselves, on demand, recovers whenever Redis is back and never leaves a take waiting.
      autoReconnect: false,
      maxRetries: 0,
      // Queued commands wait for a connection that may never come; a rate limiter must answer now.
      enableOfflineQueue: false,
      // Concurrent takes go out together: many EVALSHAs per round trip.
      enableAutoPipelining: true,
    });
  }

  async take(key: string, policy: BucketPolicy): Promise<TakeResult> {
    if (this.#closed) throw new RateLimitStoreError("RedisStore is closed");
    const compiled = compilePolicy(policy);
    const args = [this.prefix + key, String(compiled.capacityUnits), String(compiled.unitsPerToken), String(compiled.unitsPerMs)];
    const reply = await this.#withDeadline(this.#run(args));
    const [allowed, units] = Array.isArray(reply) ? reply : [];
    if (typeof allowed !== "number" || typeof units !== "number") {
      throw new RateLimitStoreError(`RedisStore: unexpected reply from the take script: ${JSON.stringify(reply)}`);
    }
    return summarize(units, allowed === 1, compiled);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.close();
  }

  async #run(args: string[]): Promise<unknown> {
    await this.#connect();
    try {
      return await this.#client.send("EVALSHA", [SCRIPT_SHA, "1", ...args]);
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith("NOSCRIPT"))) throw error;
      return await this.#client.send("EVAL", [TAKE_SCRIPT, "1", ...args]);
    }
  }

  /** Connects if not connected, once for all concurrent takes, and loads the script on the new connection. */
  #connect(): Promise<void> {
    if (this.#client.connected) return Promise.resolve();
    this.#connecting ??= (async () => {
      try {
        await this.#client.connect();
        const sha = await this.#client.send("SCRIPT", ["LOAD", TAKE_SCRIPT]);
        if (sha !== SCRIPT_SHA) throw new RateLimitStoreError(`RedisStore: SCRIPT LOAD returned ${String(sha)}, expected ${SCRIPT_SHA}`);
      } finally {
        this.#connecting = undefined;
      }
    })();
    return this.#connecting;
  }

  #withDeadline<T>(work: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RateLimitStoreError(`RedisStore: no answer from Redis within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    // The loser of the race may still settle later; a rejection nobody awaits must not become an unhandled one.
    work.catch(() => {});
    return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
  }
}
