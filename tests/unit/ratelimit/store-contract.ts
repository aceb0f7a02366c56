/**
 * What every RateLimitStore must do, as one suite run against each store. The refill rates are tiny (a token per
 * 1000 s), so the results do not depend on how long the test takes: the store may use its own clock.
 */
import { describe, expect, test } from "bun:test";
import type { RateLimitStore } from "../../../src/ratelimit/store.ts";
import type { BucketPolicy } from "../../../src/ratelimit/token-bucket.ts";

const SLOW = 0.001; // tokens per second: one per 1000 s

export function storeContract(name: string, makeStore: () => RateLimitStore) {
  describe(`${name}: the RateLimitStore contract`, () => {
    const key = () => `contract:${crypto.randomUUID()}`;

    test("a new bucket is full; takes count down to 0, then are refused with an honest Retry-After", async () => {
      const store = makeStore();
      const k = key();
      const policy = { capacity: 5, refillPerSecond: SLOW };
      const results = [];
      for (let i = 0; i < 7; i++) results.push(await store.take(k, policy));
      expect(results.map((r) => r.allowed)).toEqual([true, true, true, true, true, false, false]);
      expect(results.map((r) => r.remaining)).toEqual([4, 3, 2, 1, 0, 0, 0]);
      for (const r of results) expect(r.limit).toBe(5);
      // One token per 1000 s, so the first is 1000 s away (a few ms less, rounded up), full in 5000 s.
      expect(results[0]!.resetSeconds).toBe(1000);
      expect(results[4]!.resetSeconds).toBe(5000);
      expect(results[5]).toMatchObject({ retryAfterSeconds: 1000, resetSeconds: 5000 });
      expect(results[0]!.retryAfterSeconds).toBe(0);
      await store.close();
    });

    test("takes on one key share its bucket; other keys are independent", async () => {
      const store = makeStore();
      const [a, b] = [key(), key()];
      const policy = { capacity: 2, refillPerSecond: SLOW };
      expect((await store.take(a, policy)).remaining).toBe(1);
      expect((await store.take(a, policy)).remaining).toBe(0);
      expect((await store.take(a, policy)).allowed).toBe(false);
      expect(await store.take(b, policy)).toMatchObject({ allowed: true, remaining: 1 });
      expect((await store.take(a, policy)).allowed).toBe(false);
      await store.close();
    });

    test("a key whose policy changes keeps its whole tokens, capped at the new capacity", async () => {
      const store = makeStore();
      const k = key();
      await store.take(k, { capacity: 5, refillPerSecond: SLOW }); // 4 left
      expect((await store.take(k, { capacity: 5, refillPerSecond: 3 * SLOW })).remaining).toBe(3);
      expect((await store.take(k, { capacity: 2, refillPerSecond: SLOW })).remaining).toBe(1);
      await store.close();
    });

    test("concurrent takes never spend a token twice: 200 at once on capacity 50 → exactly 50 allowed", async () => {
      const store = makeStore();
      const k = key();
      const policy = { capacity: 50, refillPerSecond: SLOW };
      const results = await Promise.all(Array.from({ length: 200 }, () => store.take(k, policy)));
      expect(results.filter((r) => r.allowed).length).toBe(50);
      // Each remaining count from 49 down to 0 was handed out exactly once.
      const remaining = results.filter((r) => r.allowed).map((r) => r.remaining);
      expect(remaining.sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
      await store.close();
    });

    // A store may answer synchronously, so a failure may be thrown rather than rejected: either will do.
    const attempt = (store: RateLimitStore, policy: BucketPolicy) => Promise.resolve().then(() => store.take(key(), policy));

    test("an invalid policy fails with RangeError", async () => {
      const store = makeStore();
      await expect(attempt(store, { capacity: 0, refillPerSecond: 1 })).rejects.toThrow(RangeError);
      await expect(attempt(store, { capacity: 1, refillPerSecond: 0 })).rejects.toThrow(RangeError);
      await store.close();
    });

    test("a closed store fails", async () => {
      const store = makeStore();
      await store.close();
      await expect(attempt(store, { capacity: 1, refillPerSecond: 1 })).rejects.toThrow(/closed/);
    });
  });
}
