/**
 * Rate limits through the assembled app: a bucket per API key (per client address without keys), the key's own
 * policy over the default, headers on limited routes only, and a 429 that never reaches the handler. The
 * MemoryStore runs on a frozen clock, so every header value is exact.
 */
import { beforeEach, describe, expect, test } from "bun:test";
import { Hono, type Context } from "hono";
import { rateLimit, type RateLimitOptions } from "../../../src/http/middleware/rate-limit.ts";
import { ProblemError, problemErrorHandler } from "../../../src/http/problem.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { MemoryStore } from "../../../src/ratelimit/memory-store.ts";
import type { RateLimitStore } from "../../../src/ratelimit/store.ts";
import { rateLimitHeadersOf, send, SETOSA, SETOSA_NAMED, testApp, type Sendable } from "../../helpers/app.ts";
import type { FakeRepository } from "../../helpers/fake-repository.ts";
import { expectProblem } from "../../helpers/http.ts";
import { makeKeys } from "../../helpers/keys.ts";

describe("rateLimit on its own, in a small app per configuration", () => {
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

    test("the subject's name names the policy in both IETF headers", async () => {
      const { get } = makeApp({ identify: () => ({ key: "k", policy: POLICY, name: "per-key" }) });
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
      expect(() => rateLimit({ store, identify, logger: {} as never })).toThrow(/logger/);
    });
  });
});

// Default policy: 5 at once, one back every 2 s (empty to full: 10 s).
const ENV = { RATE_LIMIT_CAPACITY: "5", RATE_LIMIT_REFILL_PER_SECOND: "0.5" };
const { store: keys, secret } = makeKeys([
  { name: "alpha", scopes: ["predict", "generate"] },
  { name: "beta", scopes: ["predict"] },
  // Its own policy: 2 at once, one back per second.
  { name: "gamma", scopes: ["predict"], rateLimit: { capacity: 2, refillPerSecond: 1 } },
]);

const predict: Sendable = { method: "POST", path: "/v1/predict", body: { features: SETOSA } };
const as = (name: keyof typeof secret) => ({ "X-API-Key": secret[name] });

let t: ReturnType<typeof testApp<FakeRepository>>;
beforeEach(() => {
  t = testApp({ keys, env: ENV });
});
const predictCalls = () => t.repository.model("iris").calls.length;

describe("limited responses carry the IETF and X-RateLimit headers", () => {
  test("first and second request of a key, default policy", async () => {
    const first = await send(t.app, predict, as("alpha"));
    expect(first.status).toBe(200);
    expect(rateLimitHeadersOf(first)).toEqual({
      "ratelimit-policy": '"default";q=5;w=10',
      ratelimit: '"default";r=4;t=2',
      "x-ratelimit-limit": "5",
      "x-ratelimit-remaining": "4",
      "x-ratelimit-reset": "2",
    });
    const second = await send(t.app, predict, as("alpha"));
    expect(rateLimitHeadersOf(second)).toEqual({
      "ratelimit-policy": '"default";q=5;w=10',
      ratelimit: '"default";r=3;t=4',
      "x-ratelimit-limit": "5",
      "x-ratelimit-remaining": "3",
      "x-ratelimit-reset": "4",
    });
  });

  test("every protected route takes from the key's one bucket, and errors after the limit still carry the headers", async () => {
    const routes: Sendable[] = [
      predict,
      { method: "POST", path: "/v2/predict", body: SETOSA_NAMED },
      { method: "POST", path: "/v1/predict/batch", body: { instances: [SETOSA] } },
      // Past the limiter, these fail in the route (422, 404): the headers are on those responses too.
      { method: "POST", path: "/v1/predict", body: { features: [1, 2] } },
      { method: "POST", path: "/v1/generate", body: { prompt: "In the beginning" } },
    ];
    const remaining: string[] = [];
    for (const route of routes) {
      const res = await send(t.app, route, as("alpha"));
      expect(res.status).toBeLessThan(429);
      remaining.push(res.headers.get("x-ratelimit-remaining")!);
    }
    expect(remaining).toEqual(["4", "3", "2", "1", "0"]);
  });

  test("public routes and unknown paths carry none and take nothing", async () => {
    for (const route of ["/health", "/readiness", "/doc", "/openapi.json", "/docs", "/", "/v1/models", "/v1/models/iris", "/nowhere"]) {
      for (let i = 0; i < 6; i++) {
        const res = await t.app.request(route, { headers: as("alpha") });
        expect({ route, headers: rateLimitHeadersOf(res) }).toEqual({ route, headers: {} });
      }
    }
    expect((await send(t.app, predict, as("alpha"))).headers.get("x-ratelimit-remaining")).toBe("4");
  });

  test("requests refused by authentication take from the client address's bucket, not the key's; a flood of them gets 429", async () => {
    // alpha has no admin scope: 403; no key at all: 401; an unknown key: 401. All from one address (the default policy, 5).
    const refusals = [
      await send(t.app, { method: "POST", path: "/v1/models/iris/reload" }, as("alpha")),
      await send(t.app, predict),
      await send(t.app, predict, { "X-API-Key": "osk_notAKeyOfThisServer00000000000000000000000" }),
    ];
    expect(refusals.map((r) => r.status)).toEqual([403, 401, 401]);
    expect(refusals.map((r) => r.headers.get("ratelimit"))).toEqual(['"default";r=4;t=2', '"default";r=3;t=4', '"default";r=2;t=6']);
    for (let i = 0; i < 2; i++) expect((await send(t.app, predict)).status).toBe(401);
    const flooded = await send(t.app, predict, { "X-API-Key": "osk_notAKeyOfThisServer00000000000000000000000" });
    await expectProblem(flooded, 429, "/v1/predict");
    expect(flooded.headers.get("retry-after")).toBe("2");
    // The key's own bucket is untouched.
    expect((await send(t.app, predict, as("alpha"))).headers.get("x-ratelimit-remaining")).toBe("4");
  });
});

describe("per key", () => {
  test("two keys have separate buckets", async () => {
    for (let i = 0; i < 5; i++) expect((await send(t.app, predict, as("alpha"))).status).toBe(200);
    expect((await send(t.app, predict, as("alpha"))).status).toBe(429);
    const beta = await send(t.app, predict, as("beta"));
    expect(beta.status).toBe(200);
    expect(beta.headers.get("ratelimit")).toBe('"default";r=4;t=2');
  });

  test("the same key by X-API-Key and by Bearer is one bucket", async () => {
    expect((await send(t.app, predict, as("alpha"))).headers.get("x-ratelimit-remaining")).toBe("4");
    expect((await send(t.app, predict, { Authorization: `Bearer ${secret.alpha}` })).headers.get("x-ratelimit-remaining")).toBe("3");
  });

  test("a key's own rateLimit overrides the default, and its policy is named after the key", async () => {
    const first = await send(t.app, predict, as("gamma"));
    expect(rateLimitHeadersOf(first)).toEqual({
      "ratelimit-policy": '"gamma";q=2;w=2',
      ratelimit: '"gamma";r=1;t=1',
      "x-ratelimit-limit": "2",
      "x-ratelimit-remaining": "1",
      "x-ratelimit-reset": "1",
    });
    expect((await send(t.app, predict, as("gamma"))).status).toBe(200);
    const refused = await send(t.app, predict, as("gamma"));
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("1");
  });
});

describe("an empty bucket", () => {
  test("is a 429 problem+json with Retry-After >= 1, and the handler does not run", async () => {
    for (let i = 0; i < 5; i++) expect((await send(t.app, predict, as("alpha"))).status).toBe(200);
    expect(predictCalls()).toBe(5);
    for (let i = 0; i < 3; i++) {
      const res = await send(t.app, predict, as("alpha"));
      const retryAfter = Number(res.headers.get("retry-after"));
      expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
      // One token at 0.5 per second: 2 s.
      expect(retryAfter).toBe(2);
      expect(rateLimitHeadersOf(res)).toEqual({
        "ratelimit-policy": '"default";q=5;w=10',
        ratelimit: '"default";r=0;t=10',
        "x-ratelimit-limit": "5",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "10",
      });
      const body = await expectProblem(res, 429, "/v1/predict");
      expect(body.type).toBe("/problems/rate-limited");
      expect(body.title).toBe("Too Many Requests");
      expect(body.detail).toBe("Rate limit exceeded: at most 5 requests at once, refilled at 0.5 per second. Retry in 2 seconds.");
    }
    expect(predictCalls()).toBe(5);
  });

  test("a refused request's body is not read: an invalid body is still a 429, not a 400", async () => {
    for (let i = 0; i < 5; i++) await send(t.app, predict, as("alpha"));
    await expectProblem(await send(t.app, { ...predict, body: "{not json" }, as("alpha")), 429, "/v1/predict");
  });

  test("a retry after Retry-After seconds succeeds; one second sooner does not", async () => {
    for (let i = 0; i < 5; i++) await send(t.app, predict, as("alpha"));
    const refused = await send(t.app, predict, as("alpha"));
    const wait = Number(refused.headers.get("retry-after")) * 1000;
    t.clock.advance(wait - 1000);
    expect((await send(t.app, predict, as("alpha"))).status).toBe(429);
    t.clock.advance(1000);
    const retried = await send(t.app, predict, as("alpha"));
    expect(retried.status).toBe(200);
    expect(predictCalls()).toBe(6);
  });
});

describe("without keys, per client address", () => {
  // The real server reads the peer address from Bun's connection info; here a header stands in for it.
  const clientAddress = (c: Context) => c.req.header("x-test-peer");
  const from = (address: string) => ({ "X-Test-Peer": address });

  test("each address has its own bucket under the default policy", async () => {
    const open = testApp({ env: ENV, clientAddress });
    for (let i = 0; i < 5; i++) expect((await send(open.app, predict, from("10.0.0.1"))).status).toBe(200);
    const refused = await send(open.app, predict, from("10.0.0.1"));
    await expectProblem(refused, 429, "/v1/predict");
    expect(open.repository.model("iris").calls.length).toBe(5);
    const other = await send(open.app, predict, from("10.0.0.2"));
    expect(other.status).toBe(200);
    expect(rateLimitHeadersOf(other)).toMatchObject({ "ratelimit-policy": '"default";q=5;w=10', ratelimit: '"default";r=4;t=2' });
  });

  test("an API key sent anyway changes nothing: the address is the bucket", async () => {
    const open = testApp({ env: ENV, clientAddress });
    expect((await send(open.app, predict, { ...from("10.0.0.3"), ...as("gamma") })).headers.get("x-ratelimit-limit")).toBe("5");
    expect((await send(open.app, predict, { ...from("10.0.0.3"), ...as("alpha") })).headers.get("x-ratelimit-remaining")).toBe("3");
  });

  test("public routes are not limited by address either", async () => {
    const open = testApp({ env: { RATE_LIMIT_CAPACITY: "1" }, clientAddress });
    for (let i = 0; i < 3; i++) {
      const res = await open.app.request("/health", { headers: from("10.0.0.4") });
      expect(res.status).toBe(200);
      expect(rateLimitHeadersOf(res)).toEqual({});
    }
  });
});
