/**
 * The token bucket, as exact integer arithmetic: no I/O, no clock of its own, no floating-point accumulation.
 *
 * A bucket holds at most `capacity` tokens and gains `refillPerSecond` tokens per second; a request takes one.
 * Tokens are counted in *units*: one token is `unitsPerToken` units and one millisecond adds `unitsPerMs` units,
 * both integers chosen so that `unitsPerMs / unitsPerToken` is exactly the policy's tokens per millisecond. With
 * integer milliseconds every quantity is then an integer, so a million refills of 1 ms add exactly what one refill
 * of 1000 s adds: no drift, no rounding, and a bucket is never below zero nor above capacity.
 *
 * The same arithmetic runs inside Redis (see redis-store.ts); it is kept below 2^53 so Lua's doubles are exact too.
 */

/** How a bucket behaves: its burst size and how fast it refills. */
export type BucketPolicy = {
  /** Tokens a full bucket holds: the largest burst. An integer >= 1. */
  capacity: number;
  /** Tokens added back per second, > 0; fractions allowed (0.5 = one token every 2 s). */
  refillPerSecond: number;
};

/**
 * A bucket at an instant: `units` in the bucket at `atMs` (integer milliseconds, the clock the store uses), where
 * one token is `unitsPerToken` units. JSON-serialisable. A missing state is a full bucket.
 */
export type BucketState = {
  units: number;
  unitsPerToken: number;
  atMs: number;
};

/** The outcome of one request against a bucket, in the terms of the RateLimit headers. */
export type TakeResult = {
  allowed: boolean;
  /** The capacity. */
  limit: number;
  /** Whole tokens left after this request (>= 0). */
  remaining: number;
  /** Whole seconds (rounded up) until the bucket is full again. */
  resetSeconds: number;
  /** When refused: whole seconds (rounded up, >= 1) after which a token is there. 0 when allowed. */
  retryAfterSeconds: number;
};

/** A policy in integer units; from {@link compilePolicy}. */
export type CompiledPolicy = {
  readonly capacity: number;
  readonly refillPerSecond: number;
  /** Units in one token. */
  readonly unitsPerToken: number;
  /** Units added per millisecond. */
  readonly unitsPerMs: number;
  /** Units in a full bucket: capacity * unitsPerToken. */
  readonly capacityUnits: number;
};

// Integers up to here are exact in a double, in JavaScript and in Redis's Lua alike. Half of it leaves room for
// `capacityUnits + unitsPerMs` and for timestamps added to durations.
const SAFE = Math.floor(Number.MAX_SAFE_INTEGER / 2);
// Largest denominator tried when turning refillPerSecond into a fraction: enough for any rate written in decimal
// with up to 6 places, or as 1/n for n up to a million (one token per 11.5 days).
const MAX_RATE_DENOMINATOR = 1_000_000;
// How far the fraction may be from the float given. Rates like 0.1 or 1/3 have no exact double; the fraction is
// what was meant, and any rate whose fraction is further off than this is refused rather than silently changed.
const MAX_RATE_ERROR = 1e-9;
// Policies made by compilePolicy, so take() can skip validating them again (and cannot be fooled by a look-alike).
const compiledPolicies = new WeakSet<object>();

/**
 * Checks a policy and expresses it in integer units.
 * @throws {RangeError} If capacity is not an integer >= 1, refillPerSecond is not a finite number > 0, or the
 * pair cannot be represented exactly within 2^52 units.
 * @example compilePolicy({ capacity: 10, refillPerSecond: 3 }) // { unitsPerToken: 1000, unitsPerMs: 3, capacityUnits: 10_000, ... }
 */
export function compilePolicy(policy: BucketPolicy): CompiledPolicy {
  if (compiledPolicies.has(policy)) return policy as CompiledPolicy;
  const { capacity, refillPerSecond } = policy ?? ({} as BucketPolicy);
  if (!Number.isSafeInteger(capacity) || capacity < 1) {
    throw new RangeError(`rate limit: capacity must be an integer >= 1; got ${String(capacity)}`);
  }
  if (typeof refillPerSecond !== "number" || !Number.isFinite(refillPerSecond) || refillPerSecond <= 0) {
    throw new RangeError(`rate limit: refillPerSecond must be a finite number > 0; got ${String(refillPerSecond)}`);
  }
  // capacityUnits = capacity * 1000 * denominator / gcd must stay safe, which bounds the denominator we may use.
  const maxDenominator = Math.min(MAX_RATE_DENOMINATOR, Math.floor(SAFE / (capacity * 1000)));
  const [p, q] = maxDenominator >= 1 ? toFraction(refillPerSecond, maxDenominator) : [0, 1];
  if (p < 1 || Math.abs(p / q - refillPerSecond) > refillPerSecond * MAX_RATE_ERROR || p > SAFE) {
    throw new RangeError(
      `rate limit: refillPerSecond ${refillPerSecond} with capacity ${capacity} cannot be counted exactly; use a rate with fewer decimals or a smaller capacity`,
    );
  }
  // tokens per ms = p / (1000 q) = unitsPerMs / unitsPerToken, in lowest terms.
  const g = gcd(p, 1000 * q);
  const unitsPerMs = p / g;
  const unitsPerToken = (1000 * q) / g;
  const capacityUnits = capacity * unitsPerToken;
  if (capacityUnits + unitsPerMs > SAFE || unitsPerMs * 1000 > SAFE) {
    throw new RangeError(`rate limit: capacity ${capacity} with refillPerSecond ${refillPerSecond} is too large to count exactly`);
  }
  const compiled = Object.freeze({ capacity, refillPerSecond, unitsPerToken, unitsPerMs, capacityUnits });
  compiledPolicies.add(compiled);
  return compiled;
}

/**
 * One request against a bucket at `nowMs`: refills for the time since the state, then takes a token if there is one.
 * Returns the new state (store it) and the result. A refused request takes nothing, so refusals cost a client nothing
 * but time.
 *
 * @param state - The bucket as last stored, or undefined for a full bucket.
 * @param policy - The bucket's policy, checked as by {@link compilePolicy} (RangeError) unless it came from there.
 * @param nowMs - The current time in milliseconds; truncated to an integer. A clock that went backwards refills nothing.
 * @example
 * ```ts
 * let state: BucketState | undefined;
 * const policy = { capacity: 10, refillPerSecond: 2 };
 * const { state: next, result } = take(state, policy, Date.now());
 * state = next;
 * if (!result.allowed) console.log(`retry in ${result.retryAfterSeconds} s`);
 * ```
 */
export function take(state: BucketState | undefined, policy: BucketPolicy, nowMs: number): { state: BucketState; result: TakeResult } {
  const p = compiledPolicies.has(policy) ? (policy as CompiledPolicy) : compilePolicy(policy);
  const now = Math.floor(nowMs);
  let units = refill(state, p, now);
  const allowed = units >= p.unitsPerToken;
  if (allowed) units -= p.unitsPerToken;
  return { state: { units, unitsPerToken: p.unitsPerToken, atMs: now }, result: summarize(units, allowed, p) };
}

/** Units in the bucket at `now`: the stored units plus the refill since, capped at capacity. */
export function refill(state: BucketState | undefined, p: CompiledPolicy, now: number): number {
  if (!state) return p.capacityUnits;
  let units = state.units;
  // The policy for a key changed since the state was stored: whole tokens carry over, the part-token does not.
  if (state.unitsPerToken !== p.unitsPerToken) units = Math.floor(units / state.unitsPerToken) * p.unitsPerToken;
  units = Math.min(units, p.capacityUnits);
  const elapsed = now - state.atMs;
  if (elapsed <= 0) return units;
  // Compare times rather than multiplying first, so a long idle cannot overflow.
  const missing = p.capacityUnits - units;
  return elapsed >= ceilDiv(missing, p.unitsPerMs) ? p.capacityUnits : units + elapsed * p.unitsPerMs;
}

/** The result for a bucket holding `units` after a request that was (or was not) `allowed`. */
export function summarize(units: number, allowed: boolean, p: CompiledPolicy): TakeResult {
  const unitsPerSecond = p.unitsPerMs * 1000;
  return {
    allowed,
    limit: p.capacity,
    remaining: Math.floor(units / p.unitsPerToken),
    resetSeconds: ceilDiv(p.capacityUnits - units, unitsPerSecond),
    // Rounded up, so that a client waiting exactly this long finds the token there.
    retryAfterSeconds: allowed ? 0 : Math.max(1, ceilDiv(p.unitsPerToken - units, unitsPerSecond)),
  };
}

/** Milliseconds (rounded up) until a bucket holding `units` is full: how long its state is worth keeping. */
export function msUntilFull(units: number, p: CompiledPolicy): number {
  return ceilDiv(p.capacityUnits - units, p.unitsPerMs);
}

/** Seconds (rounded up) to refill an empty bucket: the `w` of the RateLimit-Policy header. */
export function windowSeconds(p: CompiledPolicy): number {
  return ceilDiv(p.capacityUnits, p.unitsPerMs * 1000);
}

/** ceil(a / b) for non-negative safe integers a and b > 0, without trusting a float quotient's last bit. */
function ceilDiv(a: number, b: number): number {
  if (a <= 0) return 0;
  let q = Math.floor(a / b);
  if (q * b > a) q -= 1;
  else if ((q + 1) * b <= a) q += 1;
  return q * b === a ? q : q + 1;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * The fraction p/q with q <= maxDenominator closest to x > 0, by continued fractions (as Python's
 * Fraction.limit_denominator): 0.1 → 1/10, 1/3 → 1/3, 2.5 → 5/2.
 */
export function toFraction(x: number, maxDenominator: number): [number, number] {
  // Convergents h/k; (h0/k0, h1/k1) are the two latest.
  let [h0, h1, k0, k1] = [0, 1, 1, 0];
  let y = x;
  for (let i = 0; i < 64; i++) {
    const a = Math.floor(y);
    const k2 = a * k1 + k0;
    if (k2 > maxDenominator) {
      // The best approximation is either the last convergent or the largest semiconvergent that still fits.
      const t = Math.floor((maxDenominator - k0) / k1);
      const [hs, ks] = [t * h1 + h0, t * k1 + k0];
      return k1 > 0 && Math.abs(h1 / k1 - x) <= Math.abs(hs / ks - x) ? [h1, k1] : [hs, ks];
    }
    [h0, h1, k0, k1] = [h1, a * h1 + h0, k1, k2];
    const frac = y - a;
    if (frac === 0 || h1 / k1 === x) break;
    y = 1 / frac;
  }
  return [h1, k1];
}
