import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { RedisStore, TAKE_SCRIPT } from "../../../src/ratelimit/redis-store.ts";
import { RateLimitStoreError } from "../../../src/ratelimit/store.ts";
import { freePort } from "../../helpers/ports.ts";
import { startRedis, type TestRedis } from "../../helpers/redis.ts";
import { storeContract } from "./store-contract.ts";

let redis: TestRedis;
let admin: RedisClient;
const stores: RedisStore[] = [];
/** A store closed after the file, whatever the test did with it. */
const store = (options: Partial<ConstructorParameters<typeof RedisStore>[0]> = {}) => {
  const s = new RedisStore({ url: redis.url, ...options });
  stores.push(s);
  return s;
};

beforeAll(async () => {
  redis = await startRedis();
  admin = new RedisClient(redis.url);
});
afterAll(async () => {
  for (const s of stores) await s.close();
  admin?.close();
  await redis?.stop();
});

storeContract("RedisStore", () => store());

describe("RedisStore", () => {
  test("keys are prefixed, hold integers, and expire when the bucket would be full again", async () => {
    const s = store({ prefix: "rl-test:" });
    await s.take("expiry", { capacity: 2, refillPerSecond: 1 });
    expect(await admin.send("HGETALL", ["rl-test:expiry"])).toMatchObject({ u: "1000", p: "1000", t: expect.stringMatching(/^\d+$/) });
    // One token missing at 1 per second: full again within 1000 ms, and the key lives no longer than that.
    const ttl = await admin.send("PTTL", ["rl-test:expiry"]);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1000);
  });

  test("an idle bucket vanishes from Redis, and a take afterwards finds it full", async () => {
    const s = store();
    const policy = { capacity: 1, refillPerSecond: 1000 }; // full again 1 ms after a take
    await s.take("vanishing", policy);
    // Wait for Redis to expire the key: an observed event, bounded, not a guess at how long it takes.
    const deadline = Date.now() + 5_000;
    while ((await admin.send("EXISTS", ["ratelimit:vanishing"])) && Date.now() < deadline) await Bun.sleep(5);
    expect(await admin.send("EXISTS", ["ratelimit:vanishing"])).toBeFalsy();
    expect(await s.take("vanishing", policy)).toMatchObject({ allowed: true, remaining: 0 });
  });

  test("large unit counts round-trip exactly (no 14-digit Lua rounding)", async () => {
    const s = store();
    // Capacity 10^9 at one token per 2251 s: 2.251e15 units in a full bucket.
    const policy = { capacity: 1_000_000_000, refillPerSecond: 1 / 2251 };
    expect((await s.take("big", policy)).remaining).toBe(999_999_999);
    expect((await s.take("big", policy)).remaining).toBe(999_999_998);
    expect(await admin.send("HGET", ["ratelimit:big", "u"])).toMatch(/^\d{16}$/);
  });

  test("two stores (two connections, as two servers would have) share one bucket", async () => {
    const [a, b] = [store(), store()];
    const policy = { capacity: 3, refillPerSecond: 0.001 };
    expect((await a.take("shared", policy)).remaining).toBe(2);
    expect((await b.take("shared", policy)).remaining).toBe(1);
    expect((await a.take("shared", policy)).remaining).toBe(0);
    expect((await b.take("shared", policy)).allowed).toBe(false);
  });

  test("concurrent takes through two connections: 200 on capacity 50 → exactly 50 allowed", async () => {
    const [a, b] = [store(), store()];
    const policy = { capacity: 50, refillPerSecond: 0.001 };
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).take("atomic-2", policy)));
    expect(results.filter((r) => r.allowed).length).toBe(50);
  });

  test("a script Redis has forgotten (SCRIPT FLUSH) is re-sent with EVAL and cached again", async () => {
    const s = store();
    const policy = { capacity: 5, refillPerSecond: 0.001 };
    expect((await s.take("flush", policy)).remaining).toBe(4);
    await admin.send("SCRIPT", ["FLUSH"]);
    const sha = new Bun.CryptoHasher("sha1").update(TAKE_SCRIPT).digest("hex");
    expect(await admin.send("SCRIPT", ["EXISTS", sha])).toEqual([0]);
    expect((await s.take("flush", policy)).remaining).toBe(3);
    expect(await admin.send("SCRIPT", ["EXISTS", sha])).toEqual([1]);
  });

  test("rejects bad options at construction", () => {
    expect(() => new RedisStore({ url: "http://127.0.0.1:6379" })).toThrow(TypeError);
    expect(() => new RedisStore({ url: undefined as unknown as string })).toThrow(TypeError);
    expect(() => new RedisStore({ url: "redis://127.0.0.1:6379", timeoutMs: 0 })).toThrow(RangeError);
  });
});

describe("RedisStore when Redis fails", () => {
  const policy = { capacity: 5, refillPerSecond: 1 };

  // Bounded by the test timeout: a take that hung would fail the test rather than pass it late.
  test("an unreachable Redis rejects at once", async () => {
    const s = new RedisStore({ url: `redis://127.0.0.1:${freePort()}` });
    await expect(s.take("k", policy)).rejects.toThrow();
    await expect(s.take("k", policy)).rejects.toThrow();
    await s.close();
  }, 3_000);

  test("a Redis that stops answering rejects after timeoutMs, and is used again once it answers", async () => {
    const own = await startRedis();
    const s = new RedisStore({ url: own.url, timeoutMs: 200 });
    try {
      expect((await s.take("k", policy)).allowed).toBe(true);
      process.kill(own.pid, "SIGSTOP");
      await expect(s.take("k", policy)).rejects.toThrow(RateLimitStoreError);
      process.kill(own.pid, "SIGCONT");
      expect((await s.take("k", policy)).allowed).toBe(true);
    } finally {
      await s.close();
      await own.stop();
    }
  }, 5_000);

  test("a Redis that goes away rejects at once, and the store recovers when it is back", async () => {
    const own = await startRedis();
    const s = new RedisStore({ url: own.url });
    let again: TestRedis | undefined;
    try {
      expect((await s.take("k", policy)).remaining).toBe(4);
      await own.stop();
      await expect(s.take("k", policy)).rejects.toThrow();
      await expect(s.take("k", policy)).rejects.toThrow();
      again = await startRedis({ port: own.port });
      // Nothing persisted: the new Redis starts with a full bucket, and the store uses it straight away.
      expect(await s.take("k", policy)).toMatchObject({ allowed: true, remaining: 4 });
    } finally {
      await s.close();
      await own.stop();
      await again?.stop();
    }
  }, 5_000);
});
