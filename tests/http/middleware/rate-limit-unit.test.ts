import { describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { createLogger } from "../../../src/observability/logger.ts";
import { ProblemError, problemErrorHandler } from "../../../src/http/problem.ts";
import { MemoryStore, rateLimit, type RateLimitOptions, type RateLimitStore } from "../../../src/http/middleware/rate-limit.ts";

const POLICY = { capacity: 3, refillPerSecond: 2 };

/** A small app: /hello counts handler runs, /boom throws a 422; the client is the X-Client header ("anon" without). */
function makeApp(options: Partial<RateLimitOptions> = {}) {
  let now = 1_000_000;
  const store = new MemoryStore({ now: () => now });
  const app = new Hono();
  app.onError(problemErrorHandler(createLogger("silent")));
  app.use(
    rateLimit({
      store,
      identify: (c) => (c.req.path === "/health" ? undefined : { key: c.req.header("x-client") ?? "anon", policy: POLICY }),
      ...options,
    }),
  );
  const runs = { hello: 0 };
  app.get("/hello", (c) => {
    runs.hello++;
    return c.json({ hello: "world" });
  });
  app.get("/health", (c) => c.text("ok"));
  app.get("/boom", () => {
    throw new ProblemError(422, "Invalid input", "no");
  });
  const get = (path: string, client?: string) => app.request(path, client ? { headers: { "X-Client": client } } : {});
  return { app, get, runs, advance: (ms: number) => (now += ms) };
}

const rateLimitHeaderNames = ["ratelimit-policy", "ratelimit", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"];
const headersOf = (res: Response) => Object.fromEntries(rateLimitHeaderNames.flatMap((h) => (res.headers.has(h) ? [[h, res.headers.get(h)]] : [])));

/** A store that always fails, as an unreachable Redis does. */
const brokenStore: RateLimitStore = {
  take: async () => {
    throw new Error("connect ECONNREFUSED 127.0.0.1:6379");
  },
  close: async () => {},
};

/** A logger that keeps its lines. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger("warn", { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

describe("rateLimit middleware", () => {
  test("allowed responses carry the RateLimit and X-RateLimit headers", async () => {
    const { get } = makeApp();
    const first = await get("/hello");
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ hello: "world" });
    // Capacity 3 at 2/s: empty to full in 1.5 s → w=2; one token missing = 0.5 s → t=1.
    expect(headersOf(first)).toEqual({
      "ratelimit-policy": '"default";q=3;w=2',
      ratelimit: '"default";r=2;t=1',
      "x-ratelimit-limit": "3",
      "x-ratelimit-remaining": "2",
      "x-ratelimit-reset": "1",
    });
    const third = (await get("/hello"), await get("/hello"));
    expect(headersOf(third)).toMatchObject({ ratelimit: '"default";r=0;t=2', "x-ratelimit-remaining": "0", "x-ratelimit-reset": "2" });
  });

  test("refused: 429 problem+json with Retry-After and the headers, and the handler does not run", async () => {
    const { get, runs } = makeApp();
    for (let i = 0; i < 3; i++) expect((await get("/hello")).status).toBe(200);
    expect(runs.hello).toBe(3);
    const refused = await get("/hello");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("content-type")).toBe("application/problem+json");
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(headersOf(refused)).toEqual({
      "ratelimit-policy": '"default";q=3;w=2',
      ratelimit: '"default";r=0;t=2',
      "x-ratelimit-limit": "3",
      "x-ratelimit-remaining": "0",
      "x-ratelimit-reset": "2",
    });
    const body = (await refused.json()) as { detail: string };
    expect(body).toMatchObject({ type: "/problems/rate-limited", title: "Too Many Requests", status: 429, instance: "/hello" });
    expect(body.detail).toContain("Retry in 1 second");
    expect(body.detail).toContain("at most 3 requests");
    expect(runs.hello).toBe(3);
  });

  test("a retry after Retry-After seconds succeeds", async () => {
    const { get, advance } = makeApp({ identify: () => ({ key: "k", policy: { capacity: 1, refillPerSecond: 0.25 } }) });
    expect((await get("/hello")).status).toBe(200);
    const refused = await get("/hello");
    expect(refused.headers.get("retry-after")).toBe("4");
    advance(3_999);
    expect((await get("/hello")).status).toBe(429);
    advance(1);
    expect((await get("/hello")).status).toBe(200);
  });

  test("clients are limited separately", async () => {
    const { get } = makeApp();
    for (let i = 0; i < 3; i++) await get("/hello", "alice");
    expect((await get("/hello", "alice")).status).toBe(429);
    const bob = await get("/hello", "bob");
    expect(bob.status).toBe(200);
    expect(bob.headers.get("x-ratelimit-remaining")).toBe("2");
  });

  test("identify() returning undefined: not limited, no headers", async () => {
    const { get } = makeApp();
    for (let i = 0; i < 10; i++) {
      const res = await get("/health");
      expect(res.status).toBe(200);
      expect(headersOf(res)).toEqual({});
    }
  });

  test("an error answered by onError still carries the headers", async () => {
    const { get } = makeApp();
    const res = await get("/boom");
    expect(res.status).toBe(422);
    expect(headersOf(res)).toMatchObject({ "x-ratelimit-remaining": "2", ratelimit: '"default";r=2;t=1' });
  });

  test("policyName names the policy in both IETF headers", async () => {
    const { get } = makeApp({ policyName: "per-key" });
    const res = await get("/hello");
    expect(res.headers.get("ratelimit-policy")).toBe('"per-key";q=3;w=2');
    expect(res.headers.get("ratelimit")).toBe('"per-key";r=2;t=1');
  });

  test("store failure, failOpen (default): the request goes through without headers; warned once per 10 s", async () => {
    const { logger, lines } = capturingLogger();
    const { get, runs } = makeApp({ store: brokenStore, logger });
    for (let i = 0; i < 5; i++) {
      const res = await get("/hello");
      expect(res.status).toBe(200);
      expect(headersOf(res)).toEqual({});
    }
    expect(runs.hello).toBe(5);
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatchObject({ level: 40, failOpen: true, err: { message: "connect ECONNREFUSED 127.0.0.1:6379" } });
  });

  test("store failure, failOpen false: 503 problem+json with Retry-After: 1, and the handler does not run", async () => {
    const { logger, lines } = capturingLogger();
    const { get, runs } = makeApp({ store: brokenStore, failOpen: false, logger });
    const res = await get("/hello");
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(res.headers.get("retry-after")).toBe("1");
    expect(await res.json()).toMatchObject({ type: "/problems/rate-limiter-unavailable", status: 503 });
    expect(runs.hello).toBe(0);
    expect((await get("/hello")).status).toBe(503);
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatchObject({ failOpen: false, err: { message: expect.stringContaining("ECONNREFUSED") } });
  });

  test("an invalid policy from identify() is a 500 (a bug), not a store failure waved through", async () => {
    const { get, runs } = makeApp({ identify: () => ({ key: "k", policy: { capacity: 0, refillPerSecond: 1 } }) });
    expect((await get("/hello")).status).toBe(500);
    expect(runs.hello).toBe(0);
  });

  test("identify() may be async", async () => {
    const { get } = makeApp({ identify: async () => ({ key: "async", policy: { capacity: 1, refillPerSecond: 1 } }) });
    expect((await get("/hello")).status).toBe(200);
    expect((await get("/hello")).status).toBe(429);
  });

  test("configuration mistakes throw at construction", () => {
    const store = new MemoryStore();
    const identify = () => undefined;
    expect(() => rateLimit(undefined as unknown as RateLimitOptions)).toThrow(TypeError);
    expect(() => rateLimit({ identify } as unknown as RateLimitOptions)).toThrow(/store/);
    expect(() => rateLimit({ store } as unknown as RateLimitOptions)).toThrow(/identify/);
    expect(() => rateLimit({ store, identify, failOpen: "no" as unknown as boolean })).toThrow(/failOpen/);
    expect(() => rateLimit({ store, identify, policyName: 'a"b' })).toThrow(/policyName/);
    expect(() => rateLimit({ store, identify, policyName: "" })).toThrow(/policyName/);
    expect(() => rateLimit({ store, identify, logger: {} as never })).toThrow(/logger/);
  });
});
