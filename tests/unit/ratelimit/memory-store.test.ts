import { describe, expect, test } from "bun:test";
import { MemoryStore } from "../../../src/ratelimit/memory-store.ts";
import { storeContract } from "./store-contract.ts";

storeContract("MemoryStore", () => new MemoryStore());

describe("MemoryStore", () => {
  test("uses the injected clock: exact refill at chosen instants", async () => {
    let now = 1_000_000;
    const store = new MemoryStore({ now: () => now });
    const policy = { capacity: 2, refillPerSecond: 0.5 };
    await store.take("k", policy);
    await store.take("k", policy);
    expect(await store.take("k", policy)).toMatchObject({ allowed: false, retryAfterSeconds: 2, resetSeconds: 4 });
    now += 1_999;
    expect((await store.take("k", policy)).allowed).toBe(false);
    now += 1;
    expect(await store.take("k", policy)).toMatchObject({ allowed: true, remaining: 0, resetSeconds: 4 });
  });

  test("never holds more than maxBuckets, forgetting the least recently used", async () => {
    let now = 0;
    const store = new MemoryStore({ maxBuckets: 5, now: () => now });
    const policy = { capacity: 3, refillPerSecond: 0.001 };
    for (let i = 0; i < 200; i++) {
      now += 1;
      await store.take(`client-${i}`, policy);
      // A hot key, used between every other one, is never the least recently used and keeps its state.
      await store.take("hot", policy);
      expect(store.size).toBeLessThanOrEqual(5);
    }
    expect((await store.take("hot", policy)).allowed).toBe(false);
    // client-0 was forgotten, so it is back to a full bucket; a recent client is remembered.
    expect((await store.take("client-0", policy)).remaining).toBe(2);
    expect((await store.take("client-199", policy)).remaining).toBe(1);
  });

  test("drops buckets that have refilled to full as traffic goes by", async () => {
    let now = 0;
    const store = new MemoryStore({ now: () => now });
    const policy = { capacity: 1, refillPerSecond: 1 }; // full again 1 s after a take
    for (let i = 0; i < 10; i++) await store.take(`idle-${i}`, policy);
    expect(store.size).toBe(10);
    now += 1_000;
    for (let i = 0; i < 5; i++) await store.take(`busy-${i}`, policy);
    // Each take swept two full buckets: all ten idle ones are gone, only the busy ones remain.
    expect(store.size).toBe(5);
    // Forgetting a full bucket changed nothing: it starts full again.
    expect((await store.take("idle-0", policy)).remaining).toBe(0);
  });

  test("a bucket not yet full is not swept", async () => {
    let now = 0;
    const store = new MemoryStore({ now: () => now });
    await store.take("slow", { capacity: 2, refillPerSecond: 0.001 });
    now += 10_000;
    for (let i = 0; i < 5; i++) await store.take(`other-${i}`, { capacity: 1, refillPerSecond: 1 });
    expect((await store.take("slow", { capacity: 2, refillPerSecond: 0.001 })).remaining).toBe(0);
  });

  test("rejects a bad maxBuckets at construction", () => {
    for (const maxBuckets of [0, -1, 1.5, Number.NaN]) expect(() => new MemoryStore({ maxBuckets })).toThrow(RangeError);
  });
});
