import { describe, expect, test } from "bun:test";
import { compilePolicy, refill, take, toFraction, type BucketPolicy, type BucketState, type TakeResult } from "../../../src/ratelimit/token-bucket.ts";

/** A bucket driven by hand: `at(ms)` takes one token at that instant. */
function bucket(policy: BucketPolicy) {
  let state: BucketState | undefined;
  return {
    at(nowMs: number): TakeResult {
      const next = take(state, policy, nowMs);
      state = next.state;
      return next.result;
    },
    get state() {
      return state;
    },
  };
}

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32), so failures reproduce. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("token bucket", () => {
  test("starts full: the first request leaves capacity - 1", () => {
    expect(bucket({ capacity: 10, refillPerSecond: 2 }).at(0)).toEqual({ allowed: true, limit: 10, remaining: 9, resetSeconds: 1, retryAfterSeconds: 0 });
  });

  test("takes down to 0, then refuses; refusals take nothing and never go negative", () => {
    const b = bucket({ capacity: 10, refillPerSecond: 2 });
    const remaining = Array.from({ length: 10 }, () => b.at(1_000).remaining);
    expect(remaining).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    for (let i = 0; i < 1000; i++) {
      const r = b.at(1_000);
      expect(r).toEqual({ allowed: false, limit: 10, remaining: 0, resetSeconds: 5, retryAfterSeconds: 1 });
      expect(b.state!.units).toBe(0);
    }
  });

  test("refill is capped at capacity after a long idle", () => {
    const b = bucket({ capacity: 5, refillPerSecond: 1 });
    for (let i = 0; i < 5; i++) b.at(0);
    // A year idle, then a burst: exactly `capacity` requests go through, not more.
    const year = 365 * 24 * 3600 * 1000;
    const burst = Array.from({ length: 8 }, () => b.at(year).allowed);
    expect(burst).toEqual([true, true, true, true, true, false, false, false]);
  });

  test("0.5 per second: one token every 2 s, exact at chosen instants", () => {
    const b = bucket({ capacity: 1, refillPerSecond: 0.5 });
    expect(b.at(0)).toEqual({ allowed: true, limit: 1, remaining: 0, resetSeconds: 2, retryAfterSeconds: 0 });
    expect(b.at(0)).toEqual({ allowed: false, limit: 1, remaining: 0, resetSeconds: 2, retryAfterSeconds: 2 });
    expect(b.at(1_000)).toEqual({ allowed: false, limit: 1, remaining: 0, resetSeconds: 1, retryAfterSeconds: 1 });
    expect(b.at(1_999)).toEqual({ allowed: false, limit: 1, remaining: 0, resetSeconds: 1, retryAfterSeconds: 1 });
    expect(b.at(2_000)).toEqual({ allowed: true, limit: 1, remaining: 0, resetSeconds: 2, retryAfterSeconds: 0 });
  });

  test("3 per second: a token every 333⅓ ms, with no rounding of the rate", () => {
    const b = bucket({ capacity: 3, refillPerSecond: 3 });
    for (let i = 0; i < 3; i++) b.at(0);
    expect(b.at(0)).toMatchObject({ allowed: false, remaining: 0, resetSeconds: 1, retryAfterSeconds: 1 });
    expect(b.at(333).allowed).toBe(false); // 0.999 tokens
    expect(b.at(334)).toMatchObject({ allowed: true, remaining: 0 }); // 1.002 tokens, 0.002 left
    expect(b.at(666).allowed).toBe(false); // 0.998 tokens
    expect(b.at(667).allowed).toBe(true); // 1.001
    expect(b.at(1_000).allowed).toBe(true); // exactly 1.000: the third token of the second
    expect(b.at(1_000).allowed).toBe(false);
    // Over a minute of requests every millisecond, exactly 3 per second get through.
    let allowed = 0;
    for (let t = 1_001; t <= 61_000; t++) if (b.at(t).allowed) allowed++;
    expect(allowed).toBe(180);
  });

  test("remaining, reset and retry-after at chosen instants (capacity 10, 2/s)", () => {
    const b = bucket({ capacity: 10, refillPerSecond: 2 });
    for (let i = 0; i < 10; i++) b.at(0);
    expect(b.at(0)).toEqual({ allowed: false, limit: 10, remaining: 0, resetSeconds: 5, retryAfterSeconds: 1 });
    expect(b.at(499)).toEqual({ allowed: false, limit: 10, remaining: 0, resetSeconds: 5, retryAfterSeconds: 1 }); // 4.501 s to full
    expect(b.at(500)).toEqual({ allowed: true, limit: 10, remaining: 0, resetSeconds: 5, retryAfterSeconds: 0 });
    // 2.5 s later: 5 tokens back; taking one leaves 4, and 6 missing = 3 s to full.
    expect(b.at(3_000)).toEqual({ allowed: true, limit: 10, remaining: 4, resetSeconds: 3, retryAfterSeconds: 0 });
    // 2.8 s later it holds 4 + 5.6 = 9.6 tokens: 8.6 after this one, full in 0.7 s.
    expect(b.at(5_800)).toEqual({ allowed: true, limit: 10, remaining: 8, resetSeconds: 1, retryAfterSeconds: 0 });
  });

  test("Retry-After is honest and tight: a retry after that many seconds succeeds, one second earlier does not", () => {
    const rand = random(42);
    const policies: BucketPolicy[] = [
      { capacity: 1, refillPerSecond: 0.5 },
      { capacity: 3, refillPerSecond: 3 },
      { capacity: 10, refillPerSecond: 2 },
      { capacity: 7, refillPerSecond: 0.1 },
      { capacity: 60, refillPerSecond: 1 / 60 },
      { capacity: 5, refillPerSecond: 2.5 },
      { capacity: 100, refillPerSecond: 1000 },
    ];
    let refusals = 0;
    for (const policy of policies) {
      let state: BucketState | undefined;
      let now = 0;
      for (let step = 0; step < 2_000; step++) {
        now += Math.floor(rand() * 400);
        const next = take(state, policy, now);
        state = next.state;
        if (next.result.allowed) continue;
        refusals++;
        const wait = next.result.retryAfterSeconds;
        expect(wait).toBeGreaterThanOrEqual(1);
        expect(take(state, policy, now + wait * 1000).result.allowed).toBe(true);
        if (wait > 1) expect(take(state, policy, now + (wait - 1) * 1000).result.allowed).toBe(false);
      }
    }
    expect(refusals).toBeGreaterThan(1000);
  });

  test("resetSeconds is when the bucket is full again", () => {
    const rand = random(7);
    const policy = { capacity: 4, refillPerSecond: 0.75 };
    let state: BucketState | undefined;
    let now = 0;
    for (let step = 0; step < 2_000; step++) {
      now += Math.floor(rand() * 900);
      const next = take(state, policy, now);
      state = next.state;
      const reset = next.result.resetSeconds;
      // Full at now + reset s: the next `capacity` requests then all pass. Not yet full one second earlier.
      let probe = state;
      for (let i = 0; i < policy.capacity; i++) {
        const t = take(probe, policy, now + reset * 1000);
        expect(t.result.allowed).toBe(true);
        probe = t.state;
      }
      if (reset > 0) expect(take(state, policy, now + (reset - 1) * 1000).result.remaining).toBeLessThan(policy.capacity - 1);
    }
  });

  test("no drift: 100 000 refills of 1 ms add exactly what one refill of 100 s adds", () => {
    for (const refillPerSecond of [3, 0.7, 2, 1 / 3, 0.1]) {
      const p = compilePolicy({ capacity: 1_000, refillPerSecond });
      const empty: BucketState = { units: 0, unitsPerToken: p.unitsPerToken, atMs: 0 };
      let stepped = empty;
      for (let t = 1; t <= 100_000; t++) stepped = { ...stepped, units: refill(stepped, p, t), atMs: t };
      const direct = refill(empty, p, 100_000);
      expect(stepped.units).toBe(direct);
      expect(direct).toBe(100_000 * p.unitsPerMs);
      expect(direct / p.unitsPerToken).toBeCloseTo(100 * refillPerSecond, 12);
    }
  });

  test("no drift: a request every 1 ms for 100 s at 3/s is allowed exactly 10 + 300 times", () => {
    const b = bucket({ capacity: 10, refillPerSecond: 3 });
    let allowed = 0;
    for (let t = 0; t < 100_000; t++) if (b.at(t).allowed) allowed++;
    // The 10 of the full bucket, then 3 per second for 99.999 s: floor(299.997) = 299.
    expect(allowed).toBe(10 + 299);
    expect(b.at(100_000).allowed).toBe(true); // the 300th arrives at exactly 100 s
  });

  test("a clock that goes backwards refills nothing and breaks nothing", () => {
    const b = bucket({ capacity: 2, refillPerSecond: 1 });
    b.at(10_000);
    b.at(10_000);
    expect(b.at(5_000)).toMatchObject({ allowed: false, remaining: 0 });
    expect(b.state!.units).toBe(0);
    expect(b.at(6_000).allowed).toBe(true); // the clock moves on from where it went back to
  });

  test("a key whose policy changes keeps its whole tokens, capped at the new capacity", () => {
    let { state } = take(undefined, { capacity: 5, refillPerSecond: 1 }, 0); // 4 left
    ({ state } = take(state, { capacity: 5, refillPerSecond: 3 }, 0));
    expect(take(state, { capacity: 5, refillPerSecond: 3 }, 0).result.remaining).toBe(2);
    expect(take(state, { capacity: 2, refillPerSecond: 0.5 }, 0).result.remaining).toBe(1);
  });

  test("invalid policies throw RangeError", () => {
    const bad: unknown[] = [
      { capacity: 0, refillPerSecond: 1 },
      { capacity: -1, refillPerSecond: 1 },
      { capacity: 1.5, refillPerSecond: 1 },
      { capacity: Number.NaN, refillPerSecond: 1 },
      { capacity: "10", refillPerSecond: 1 },
      { capacity: 10, refillPerSecond: 0 },
      { capacity: 10, refillPerSecond: -2 },
      { capacity: 10, refillPerSecond: Number.NaN },
      { capacity: 10, refillPerSecond: Number.POSITIVE_INFINITY },
      { capacity: 10, refillPerSecond: 1e-12 }, // one token per 31 710 years: not representable, refused
      { capacity: Number.MAX_SAFE_INTEGER, refillPerSecond: 1 },
    ];
    for (const policy of bad) expect(() => take(undefined, policy as BucketPolicy, 0), JSON.stringify(policy)).toThrow(RangeError);
  });

  test("rates are the fractions they were written as", () => {
    expect(toFraction(0.1, 1e6)).toEqual([1, 10]);
    expect(toFraction(1 / 3, 1e6)).toEqual([1, 3]);
    expect(toFraction(2.5, 1e6)).toEqual([5, 2]);
    expect(toFraction(1 / 60, 1e6)).toEqual([1, 60]);
    expect(toFraction(1000, 1e6)).toEqual([1000, 1]);
    expect(toFraction(Math.PI, 1000)).toEqual([355, 113]);
    expect(compilePolicy({ capacity: 10, refillPerSecond: 3 })).toMatchObject({ unitsPerToken: 1000, unitsPerMs: 3, capacityUnits: 10_000 });
    expect(compilePolicy({ capacity: 10, refillPerSecond: 2 })).toMatchObject({ unitsPerToken: 500, unitsPerMs: 1 });
    // The largest capacity the config allows still counts exactly.
    expect(() => compilePolicy({ capacity: 1_000_000_000, refillPerSecond: 1_000_000_000 })).not.toThrow();
    expect(() => compilePolicy({ capacity: 1_000_000_000, refillPerSecond: 1 / 7 })).not.toThrow();
  });
});
