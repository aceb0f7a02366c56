/**
 * Rate limits through the assembled app: a bucket per API key (per client address without keys), the key's own
 * policy over the default, headers on limited routes only, and a 429 that never reaches the handler. The
 * MemoryStore runs on a frozen clock, so every header value is exact.
 */
import { beforeEach, describe, expect, test } from "bun:test";
import type { Context } from "hono";
import type { FakeRepository } from "../../helpers/fake-repository.ts";
import { expectProblem } from "../../helpers/http.ts";
import { keyedApp, makeKeys, rateLimitHeadersOf, send, SETOSA, SETOSA_NAMED, type Sendable } from "../../helpers/app.ts";

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

let t: ReturnType<typeof keyedApp<FakeRepository>>;
beforeEach(() => {
  t = keyedApp({ keys, env: ENV });
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

  test("requests refused by authentication take no token from the key's bucket", async () => {
    for (let i = 0; i < 6; i++) {
      // alpha has no admin scope: 403 before the limiter; no key at all: 401.
      const forbidden = await send(t.app, { method: "POST", path: "/v1/models/iris/reload" }, as("alpha"));
      expect(forbidden.status).toBe(403);
      expect(rateLimitHeadersOf(forbidden)).toEqual({});
      expect((await send(t.app, predict)).status).toBe(401);
    }
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

  test("a key's own rateLimit overrides the default", async () => {
    const first = await send(t.app, predict, as("gamma"));
    expect(rateLimitHeadersOf(first)).toEqual({
      "ratelimit-policy": '"default";q=2;w=2',
      ratelimit: '"default";r=1;t=1',
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
    const open = keyedApp({ env: ENV, clientAddress });
    for (let i = 0; i < 5; i++) expect((await send(open.app, predict, from("10.0.0.1"))).status).toBe(200);
    const refused = await send(open.app, predict, from("10.0.0.1"));
    await expectProblem(refused, 429, "/v1/predict");
    expect(open.repository.model("iris").calls.length).toBe(5);
    const other = await send(open.app, predict, from("10.0.0.2"));
    expect(other.status).toBe(200);
    expect(rateLimitHeadersOf(other)).toMatchObject({ "ratelimit-policy": '"default";q=5;w=10', ratelimit: '"default";r=4;t=2' });
  });

  test("an API key sent anyway changes nothing: the address is the bucket", async () => {
    const open = keyedApp({ env: ENV, clientAddress });
    expect((await send(open.app, predict, { ...from("10.0.0.3"), ...as("gamma") })).headers.get("x-ratelimit-limit")).toBe("5");
    expect((await send(open.app, predict, { ...from("10.0.0.3"), ...as("alpha") })).headers.get("x-ratelimit-remaining")).toBe("3");
  });

  test("public routes are not limited by address either", async () => {
    const open = keyedApp({ env: { RATE_LIMIT_CAPACITY: "1" }, clientAddress });
    for (let i = 0; i < 3; i++) {
      const res = await open.app.request("/health", { headers: from("10.0.0.4") });
      expect(res.status).toBe(200);
      expect(rateLimitHeadersOf(res)).toEqual({});
    }
  });
});
