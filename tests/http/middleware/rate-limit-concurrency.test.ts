/**
 * Exactness under real concurrency: many HTTP clients hammer real servers for a fixed time, and the number let
 * through is what the policy allows, whatever the interleaving. With Redis, two servers (each with its own
 * connection) share one limit.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { createLogger } from "../../../src/observability/logger.ts";
import { problemErrorHandler } from "../../../src/http/problem.ts";
import { rateLimit } from "../../../src/http/middleware/rate-limit.ts";
import { MemoryStore } from "../../../src/ratelimit/memory-store.ts";
import { RedisStore } from "../../../src/ratelimit/redis-store.ts";
import type { RateLimitStore } from "../../../src/ratelimit/store.ts";
import { startRedis, type TestRedis } from "../../helpers/redis.ts";

const POLICY = { capacity: 10, refillPerSecond: 2 };
const HAMMER_MS = 3_000;
const CLIENTS = 16;
// A full bucket of 10, then 2 per second for the 3 s: 16. The first and last requests the server sees are not
// exactly 3 s apart (the loops stop on the client's clock), hence ±1.
const EXPECTED = POLICY.capacity + POLICY.refillPerSecond * (HAMMER_MS / 1000);

function serve(store: RateLimitStore, key: string) {
  const app = new Hono();
  app.onError(problemErrorHandler(createLogger("silent")));
  // failOpen false: a store failure must show up as a 503, not as extra requests let through.
  app.use(rateLimit({ store, identify: () => ({ key, policy: POLICY }), failOpen: false }));
  app.get("/", (c) => c.text("ok"));
  return Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
}

/**
 * CLIENTS loops, each sending requests one after another, alternating over `urls`, for HAMMER_MS from the first
 * response: the first token is taken before that response, so the window the server sees is not shortened by
 * the first connection's set-up.
 */
async function hammer(urls: string[]): Promise<Record<number, number>> {
  const statuses: Record<number, number> = {};
  const first = await fetch(urls[0]!);
  await first.arrayBuffer();
  statuses[first.status] = 1;
  const end = performance.now() + HAMMER_MS;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      for (let i = client; performance.now() < end; i++) {
        const res = await fetch(urls[i % urls.length]!);
        await res.arrayBuffer();
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
    }),
  );
  return statuses;
}

describe("exactly the policy's number of requests under concurrent load", () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  test("MemoryStore, one server", async () => {
    const store = new MemoryStore();
    const server = serve(store, "hammer");
    try {
      const statuses = await hammer([server.url.href]);
      expect(Object.keys(statuses).sort()).toEqual(["200", "429"]);
      expect(statuses[200]).toBeGreaterThanOrEqual(EXPECTED - 1);
      expect(statuses[200]).toBeLessThanOrEqual(EXPECTED + 1);
    } finally {
      await server.stop(true);
      await store.close();
    }
  }, 15_000);

  test("RedisStore, two servers with their own connections to one Redis", async () => {
    const stores = [new RedisStore({ url: redis.url }), new RedisStore({ url: redis.url })];
    const servers = stores.map((store) => serve(store, "hammer"));
    try {
      const statuses = await hammer(servers.map((s) => s.url.href));
      expect(Object.keys(statuses).sort()).toEqual(["200", "429"]);
      expect(statuses[200]).toBeGreaterThanOrEqual(EXPECTED - 1);
      expect(statuses[200]).toBeLessThanOrEqual(EXPECTED + 1);
    } finally {
      for (const server of servers) await server.stop(true);
      for (const store of stores) await store.close();
    }
  }, 15_000);
});
