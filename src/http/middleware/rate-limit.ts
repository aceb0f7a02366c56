/**
 * Rate limiting: a token bucket per client, kept in process memory or in Redis, announced with the IETF
 * RateLimit headers (draft-ietf-httpapi-ratelimit-headers) and the customary X-RateLimit-* ones, and refused as
 * a 429 problem with an honest Retry-After.
 */
import type { Context, MiddlewareHandler, Next } from "hono";
import type { ApiKey } from "../../auth/key-store.ts";
import type { Logger } from "../../observability/logger.ts";
import { ProblemError, problemResponse, problemType } from "../problem.ts";
import type { RateLimitStore } from "../../ratelimit/store.ts";
import { compilePolicy, windowSeconds, type BucketPolicy, type CompiledPolicy, type TakeResult } from "../../ratelimit/token-bucket.ts";

/**
 * Who a request counts against, under which policy, and the policy's name in the headers (a structured-field
 * string: printable ASCII without quotes or backslashes; default "default").
 */
export type RateLimitSubject = { key: string; policy: BucketPolicy; name?: string };

export type RateLimitOptions = {
  /** Where the buckets live: a {@link MemoryStore} or a {@link RedisStore}. */
  store: RateLimitStore;
  /** The bucket a request takes from, or undefined for a request that is not limited. */
  identify: (c: Context) => RateLimitSubject | undefined | Promise<RateLimitSubject | undefined>;
  /** When the store fails: let requests through (true) or answer 503 (false). Default true. */
  failOpen?: boolean;
  /** Where store failures are reported, at warn, at most once per 10 s. Default: not reported. */
  logger?: Logger;
};

// One warning per this long while the store keeps failing: enough to notice, not enough to flood the log.
const WARN_EVERY_MS = 10_000;

/**
 * Rate-limit middleware for Hono: one token per request from the bucket that `identify` names.
 *
 * Every limited response, allowed or refused, carries
 * - `RateLimit-Policy: "<name>";q=<capacity>;w=<seconds to refill from empty>`
 * - `RateLimit: "<name>";r=<tokens remaining>;t=<seconds until full>`
 * - `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds until full).
 *
 * A refused request never reaches the handler: a {@link ProblemError} 429 (type /problems/rate-limited) is thrown,
 * with `Retry-After` in whole seconds after which a retry succeeds (absent other traffic on the key), for the
 * app's onError (`problemErrorHandler`) to answer as problem+json.
 *
 * If the store fails (Redis down, say), the failure is logged at most once per 10 s and the request goes through
 * without rate-limit headers (`failOpen`, the default), or is answered 503 with `Retry-After: 1`.
 *
 * @param {RateLimitOptions} options
 * @param {RateLimitStore} options.store - Where buckets live.
 * @param {(c: Context) => RateLimitSubject | undefined} options.identify - The key and policy of a request; undefined = not limited. May be async.
 * @param {boolean} [options.failOpen=true] - Let requests through when the store fails.
 * @param {Logger} [options.logger] - Where store failures are warned about.
 * @returns {MiddlewareHandler} The middleware handler function.
 * @throws {TypeError} At construction, if store or identify is missing.
 *
 * @example
 * ```ts
 * const app = new Hono()
 * app.onError(problemErrorHandler(logger))
 * app.use(
 *   '/v1/*',
 *   rateLimit({
 *     store: config.REDIS_URL ? new RedisStore({ url: config.REDIS_URL }) : new MemoryStore(),
 *     identify: (c) => ({ key: c.req.header('x-api-key') ?? 'anonymous', policy: { capacity: 60, refillPerSecond: 1 } }),
 *     failOpen: true,
 *     logger,
 *   })
 * )
 * ```
 */
export function rateLimit(options: RateLimitOptions): MiddlewareHandler {
  const { store, identify, failOpen = true, logger } = options ?? ({} as RateLimitOptions);
  // Mistakes in wiring fail at start-up, not on the first request.
  if (!store || typeof store.take !== "function") throw new TypeError("rateLimit: options.store must be a RateLimitStore (MemoryStore or RedisStore)");
  if (typeof identify !== "function") throw new TypeError("rateLimit: options.identify must be a function returning { key, policy } or undefined");
  if (typeof failOpen !== "boolean") throw new TypeError("rateLimit: options.failOpen must be a boolean");
  if (logger !== undefined && typeof logger?.warn !== "function") throw new TypeError("rateLimit: options.logger must be a Logger (createLogger)");

  // Policies repeat (one per key at most), so each is compiled once with the headers that depend on it alone,
  // found by the policy object and the name.
  const cache = new WeakMap<BucketPolicy, Map<string, Announced>>();
  const announced = (p: BucketPolicy, name = "default") => {
    let byName = cache.get(p);
    if (!byName) cache.set(p, (byName = new Map()));
    let a = byName.get(name);
    if (!a) byName.set(name, (a = announce(name, compilePolicy(p))));
    return a;
  };

  let lastWarnAt = -Infinity;
  let unreported = 0;
  const reportFailure = (error: unknown) => {
    if (!logger) return;
    const now = performance.now();
    if (now - lastWarnAt < WARN_EVERY_MS) {
      unreported++;
      return;
    }
    logger.warn(
      { err: error, failOpen, failuresNotLogged: unreported },
      failOpen ? "rate-limit store failed; letting requests through unlimited" : "rate-limit store failed; refusing requests with 503",
    );
    lastWarnAt = now;
    unreported = 0;
  };

  // Synchronous when identify and the store answer at once (the memory store): no promise per request.
  return function rateLimit(c, next) {
    const subject = identify(c);
    return subject instanceof Promise ? subject.then((s) => limit(c, next, s)) : limit(c, next, subject);
  };

  function limit(c: Context, next: Next, subject: RateLimitSubject | undefined): Promise<Response | void> {
    if (subject === undefined) return next();
    // A bad policy is a bug in identify: it must surface as a 500, not be mistaken for a store failure below.
    const policy = announced(subject.policy, subject.name);
    let taken: TakeResult | Promise<TakeResult>;
    try {
      taken = store.take(subject.key, policy.compiled);
    } catch (error) {
      return storeFailed(c, next, error);
    }
    if (taken instanceof Promise) return taken.then((result) => admit(c, next, policy, result), (error: unknown) => storeFailed(c, next, error));
    return admit(c, next, policy, taken);
  }

  function storeFailed(c: Context, next: Next, error: unknown): Promise<Response | void> {
    reportFailure(error);
    if (failOpen) return next();
    // Answered here rather than thrown: the app's onError logs every 5xx, which during an outage would be one
    // error line per request; the warning above is the throttled account of it.
    return Promise.resolve(
      problemResponse(
        c,
        new ProblemError(503, "Service Unavailable", "Rate limiting is unavailable, so requests are refused for now; retry in 1 second.", {
          type: problemType("rate_limiter_unavailable"),
          headers: { "Retry-After": "1" },
        }),
      ),
    );
  }

  function admit(c: Context, next: Next, policy: Announced, result: TakeResult): Promise<Response | void> {
    const headers = rateLimitHeaders(policy, result);
    if (!result.allowed) {
      // Passed in the error rather than set on `c`: whether headers set on `c` survive depends on how onError
      // builds its response (a bare `new Response` drops them), and Retry-After must not be lost.
      throw new ProblemError(429, "Too Many Requests", refusal(policy.compiled, result), {
        type: problemType("rate_limited"),
        headers: { "Retry-After": String(result.retryAfterSeconds), ...headers },
      });
    }
    // Before next(): Hono then builds the response with them (errors answered by onError included), where
    // setting them afterwards would copy the finished response once per header.
    for (const header in headers) c.header(header, headers[header]);
    return next();
  }
}

/** A compiled policy with the header values that depend on it alone. */
type Announced = { compiled: CompiledPolicy; quotedName: string; rateLimitPolicy: string; limit: string };

function announce(policyName: string, compiled: CompiledPolicy): Announced {
  // The name is a structured-field string; refusing what would need escaping keeps the header trivially valid.
  if (!/^[\x20-\x7e]+$/.test(policyName) || /["\\]/.test(policyName)) {
    throw new TypeError(`rateLimit: a policy name must be printable ASCII without quotes or backslashes; got ${JSON.stringify(policyName)}`);
  }
  const quotedName = `"${policyName}"`;
  return { compiled, quotedName, rateLimitPolicy: `${quotedName};q=${compiled.capacity};w=${windowSeconds(compiled)}`, limit: String(compiled.capacity) };
}

/** The RateLimit-Policy, RateLimit and X-RateLimit-* headers for a result. */
function rateLimitHeaders(policy: Announced, result: TakeResult): Record<string, string> {
  return {
    "RateLimit-Policy": policy.rateLimitPolicy,
    RateLimit: `${policy.quotedName};r=${result.remaining};t=${result.resetSeconds}`,
    "X-RateLimit-Limit": policy.limit,
    "X-RateLimit-Remaining": String(result.remaining),
    "X-RateLimit-Reset": String(result.resetSeconds),
  };
}

function refusal(policy: CompiledPolicy, result: TakeResult): string {
  const s = (n: number) => (n === 1 ? "" : "s");
  return (
    `Rate limit exceeded: at most ${policy.capacity} request${s(policy.capacity)} at once, ` +
    `refilled at ${policy.refillPerSecond} per second. Retry in ${result.retryAfterSeconds} second${s(result.retryAfterSeconds)}.`
  );
}

export type ClientSubjectOptions = {
  /** Whether a request is limited at all (public routes are not). */
  limited: (c: Context) => boolean;
  /** The policy of keys without one of their own, and of client addresses. */
  defaultPolicy: BucketPolicy;
  /** The client's address, from the runtime's connection info. */
  clientAddress?: (c: Context) => string | undefined;
};

/**
 * The server's rule for who a request counts against: a verified API key's own bucket (under the key's own
 * policy, named after the key, or the default one), else the client address's bucket (requests without a valid
 * key, and every request when authentication is off).
 */
export function clientSubject({ limited, defaultPolicy, clientAddress }: ClientSubjectOptions): (c: Context) => RateLimitSubject | undefined {
  return (c) => {
    if (!limited(c)) return undefined;
    const key = c.get("apiKey") as ApiKey | undefined;
    if (key) return key.rateLimit ? { key: `key:${key.name}`, policy: key.rateLimit, name: key.name } : { key: `key:${key.name}`, policy: defaultPolicy };
    return { key: `ip:${clientAddress?.(c) ?? "unknown"}`, policy: defaultPolicy };
  };
}
