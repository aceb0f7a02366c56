/**
 * CORS (preflights before authentication, an origin allow-list, the headers browsers may read), the secure
 * headers on every kind of response, and the body limit, which refuses before anything reads the body.
 */
import { describe, expect, test } from "bun:test";
import { expectProblem } from "../../helpers/http.ts";
import { headerList, testApp, rateLimitHeadersOf, send, SETOSA, type Sendable } from "../../helpers/app.ts";
import { makeKeys } from "../../helpers/keys.ts";

const { store: keys, secret } = makeKeys([{ name: "web", scopes: ["predict", "generate"] }]);
// The same key with a bucket of its own, small enough to empty: refusals by authentication are charged to the
// client's address, whose bucket (the default policy) stays out of the way.
const small = (capacity: number) => makeKeys([{ name: "web", scopes: ["predict", "generate"], rateLimit: { capacity, refillPerSecond: 1 } }]);
const predict: Sendable = { method: "POST", path: "/v1/predict", body: { features: SETOSA } };
const EXPOSED = ["RateLimit", "RateLimit-Policy", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-Request-Id", "X-Process-Time", "Retry-After"];

function preflight(path: string, origin: string, requestHeaders = "X-API-Key", method = "POST"): Sendable {
  return {
    method: "OPTIONS",
    path,
    headers: { Origin: origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": requestHeaders },
  };
}

describe("CORS preflight", () => {
  const t = testApp({ keys, env: { RATE_LIMIT_CAPACITY: "3" } });

  test("OPTIONS with Origin and Access-Control-Request-Headers: X-API-Key is a 204 allowing the key headers and the methods", async () => {
    for (const path of ["/v1/predict", "/v1/generate", "/v1/chat/completions", "/v1/models/iris/reload"]) {
      const res = await send(t.app, preflight(path, "https://app.example"));
      expect(res.status).toBe(204);
      expect(await res.text()).toBe("");
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      expect(headerList(res, "access-control-allow-headers")).toEqual(expect.arrayContaining(["x-api-key", "authorization", "content-type", "api-version"]));
      expect(headerList(res, "access-control-allow-methods")).toEqual(expect.arrayContaining(["get", "post"]));
      expect(res.headers.get("access-control-max-age")).toBe("600");
    }
  });

  test("needs no API key although keys are on, runs no handler and takes no token", async () => {
    for (let i = 0; i < 5; i++) {
      const res = await send(t.app, preflight("/v1/predict", "https://app.example", "Authorization, Content-Type"));
      expect(res.status).toBe(204);
      expect(res.headers.get("www-authenticate")).toBeNull();
      expect(rateLimitHeadersOf(res)).toEqual({});
    }
    expect(t.repository.model("iris").calls).toEqual([]);
    // The key's bucket of 3 is untouched by the five preflights.
    const real = await send(t.app, predict, { "X-API-Key": secret.web, Origin: "https://app.example" });
    expect(real.status).toBe(200);
    expect(real.headers.get("x-ratelimit-remaining")).toBe("2");
  });
});

describe("CORS_ORIGINS allow-list", () => {
  const t = testApp({ keys, env: { CORS_ORIGINS: "https://a.example,https://b.example" } });

  test("an allowed origin is echoed, on the preflight and on the request", async () => {
    for (const origin of ["https://a.example", "https://b.example"]) {
      const pre = await send(t.app, preflight("/v1/predict", origin));
      expect(pre.status).toBe(204);
      expect(pre.headers.get("access-control-allow-origin")).toBe(origin);
      expect(headerList(pre, "vary")).toContain("origin");
      const res = await send(t.app, predict, { Origin: origin, "X-API-Key": secret.web });
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBe(origin);
      expect(headerList(res, "vary")).toContain("origin");
    }
  });

  test("an origin not on the list gets no Access-Control-Allow-Origin", async () => {
    for (const origin of ["https://c.example", "https://a.example.evil.example", "http://a.example", "null"]) {
      const pre = await send(t.app, preflight("/v1/predict", origin));
      expect(pre.headers.get("access-control-allow-origin")).toBeNull();
      const res = await send(t.app, predict, { Origin: origin, "X-API-Key": secret.web });
      expect(res.status).toBe(200); // CORS is the browser's business; the server still answers
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    }
  });
});

describe("requests without Origin (not cross-origin)", () => {
  test("get only Access-Control-Allow-Origin: * (with the default); the same request with an Origin gets the full set", async () => {
    const { app } = testApp({ keys });
    const plain = await send(app, predict, { "X-API-Key": secret.web });
    expect(plain.status).toBe(200);
    expect([...plain.headers.keys()].filter((h) => h.startsWith("access-control-"))).toEqual(["access-control-allow-origin"]);
    const cross = await send(app, predict, { "X-API-Key": secret.web, Origin: "https://app.example" });
    expect(cross.headers.get("access-control-allow-origin")).toBe("*");
    expect(cross.headers.get("access-control-expose-headers")).toContain("RateLimit");
  });

  test("a cacheable GET answered without Origin is still safe for a cross-origin request: ACAO * (default) or Vary: Origin (allow-list)", async () => {
    const star = await testApp().app.request("/v1/models");
    expect(star.headers.get("access-control-allow-origin") === "*" || headerList(star, "vary").includes("origin")).toBe(true);
    const listed = await testApp({ env: { CORS_ORIGINS: "https://a.example" } }).app.request("/v1/models");
    expect(headerList(listed, "vary")).toContain("origin");
  });
});

describe("Access-Control-Expose-Headers", () => {
  test("lists the rate-limit, id, timing and Retry-After headers, on successes and on refusals", async () => {
    const limited = small(1);
    const t = testApp({ keys: limited.store });
    const responses = [
      await send(t.app, predict, { "X-API-Key": limited.secret.web, Origin: "https://app.example" }), // 200
      await send(t.app, predict, { "X-API-Key": limited.secret.web, Origin: "https://app.example" }), // 429
      await send(t.app, predict, { Origin: "https://app.example" }), // 401
      await send(t.app, { method: "POST", path: "/v1/completions", body: {} }, { Origin: "https://app.example" }), // 401, OpenAI-shaped
      await t.app.request("/health", { headers: { Origin: "https://app.example" } }),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 429, 401, 401, 200]);
    for (const res of responses) {
      expect(headerList(res, "access-control-expose-headers")).toEqual(expect.arrayContaining(EXPOSED.map((h) => h.toLowerCase())));
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
    }
  });
});

describe("secure headers and request ids", () => {
  /** One response of every kind the app gives, each request sent with `extra` headers. */
  async function everyKind(extra: Record<string, string>) {
    const limited = small(2);
    const t = testApp({ keys: limited.store, env: { BODY_LIMIT_BYTES: "128" } });
    const key = { "X-API-Key": limited.secret.web, ...extra };
    const get = (path: string) => t.app.request(path, { headers: extra });
    return {
      ok: await send(t.app, predict, key),
      // Its token is the bucket's second and last: the body limit comes after the rate limit.
      tooLarge: await send(t.app, { ...predict, body: JSON.stringify({ features: SETOSA, pad: "x".repeat(200) }) }, key),
      tooMany: await send(t.app, predict, key),
      unauthorized: await send(t.app, predict, extra),
      forbidden: await send(t.app, { method: "POST", path: "/v1/models/iris/reload" }, key),
      notFound: await get("/nowhere"),
      openaiRefused: await send(t.app, { method: "POST", path: "/v1/chat/completions", body: {} }, extra),
      openaiModels: await get("/v1/models"),
      openaiModel: await get("/v1/models/iris"),
      health: await get("/health"),
      doc: await get("/doc"),
      openapiJson: await get("/openapi.json"),
      docs: await get("/docs"),
      docsAsset: await get("/docs/assets/swagger-ui-dist/swagger-ui.css"),
      playground: await get("/"),
    };
  }
  const STATUSES = [200, 413, 429, 401, 403, 404, 401, 200, 200, 200, 200, 200, 200, 200, 200];

  for (const [label, extra] of [
    ["without Origin", {}],
    ["with Origin", { Origin: "https://app.example" }],
  ] as const) {
    test(`X-Content-Type-Options: nosniff, X-Frame-Options and X-Request-Id on every kind of response, ${label}`, async () => {
      const responses = await everyKind(extra);
      expect(Object.values(responses).map((r) => r.status)).toEqual(STATUSES);
      for (const [name, res] of Object.entries(responses)) {
        expect({ name, nosniff: res.headers.get("x-content-type-options"), frame: res.headers.get("x-frame-options"), id: res.headers.get("x-request-id") }).toEqual({
          name,
          nosniff: "nosniff",
          frame: "SAMEORIGIN",
          id: expect.any(String),
        });
        expect(res.headers.get("referrer-policy")).toBe("no-referrer");
        await res.arrayBuffer();
      }
    });
  }

  test("a preflight carries them too", async () => {
    const { app } = testApp({ keys });
    const res = await send(app, preflight("/v1/predict", "https://app.example"));
    expect(res.status).toBe(204);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("x-frame-options")).toBe("SAMEORIGIN");
  });
});

describe("the body limit", () => {
  const LIMIT = 64;
  // 200 bytes of valid JSON for /v1/predict.
  const big = JSON.stringify({ features: SETOSA }).slice(0, -1) + " ".repeat(200) + "}";

  test("a body over BODY_LIMIT_BYTES with a valid key is a 413 problem+json, and the model is not called", async () => {
    const t = testApp({ keys, env: { BODY_LIMIT_BYTES: String(LIMIT) } });
    const res = await send(t.app, { ...predict, body: big }, { "X-API-Key": secret.web, "Content-Length": String(big.length) });
    const body = await expectProblem(res, 413, "/v1/predict");
    expect(body).toMatchObject({ title: "Content Too Large", detail: `The request body is larger than ${LIMIT} bytes.` });
    expect(t.repository.model("iris").calls).toEqual([]);
    // Within the limit, the same key and route work.
    expect((await send(t.app, predict, { "X-API-Key": secret.web })).status).toBe(200);
  });

  test("the limit is enforced before the body is parsed: malformed JSON over the limit is a 413, not a 400", async () => {
    const t = testApp({ keys, env: { BODY_LIMIT_BYTES: String(LIMIT) } });
    const garbage = "{" + "x".repeat(300);
    expect((await send(t.app, { ...predict, body: "{" + "x".repeat(10) }, { "X-API-Key": secret.web })).status).toBe(400);
    await expectProblem(await send(t.app, { ...predict, body: garbage }, { "X-API-Key": secret.web, "Content-Length": String(garbage.length) }), 413, "/v1/predict");
  });

  test("a streamed body (no Content-Length) over the limit is a 413 too", async () => {
    const t = testApp({ keys, env: { BODY_LIMIT_BYTES: String(LIMIT) } });
    const bytes = new TextEncoder().encode(big);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.subarray(0, 40));
        controller.enqueue(bytes.subarray(40));
        controller.close();
      },
    });
    const req = new Request("http://localhost/v1/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-API-Key": secret.web },
      body: stream,
      duplex: "half",
    } as RequestInit);
    expect(req.headers.get("content-length")).toBeNull();
    await expectProblem(await t.app.request(req), 413, "/v1/predict");
    expect(t.repository.model("iris").calls).toEqual([]);
  });

  test("without a key the same body is a 401: authentication comes first, and the body is never read", async () => {
    const t = testApp({ keys, env: { BODY_LIMIT_BYTES: String(LIMIT) } });
    await expectProblem(await send(t.app, { ...predict, body: big }, { "Content-Length": String(big.length) }), 401, "/v1/predict");
    // A body that counts how often it is read from: nothing reads it before the refusal...
    const unread = countingRequest(big, {});
    await expectProblem(await t.app.request(unread.request), 401, "/v1/predict");
    expect(unread.pulls()).toBe(0);
    // ...while with a key the body limit does read it (and refuses it).
    const read = countingRequest(big, { "X-API-Key": secret.web });
    await expectProblem(await t.app.request(read.request), 413, "/v1/predict");
    expect(read.pulls()).toBeGreaterThan(0);
  });

  /** A streamed POST /v1/predict whose body counts the reads from it. */
  function countingRequest(text: string, headers: Record<string, string>) {
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          pulls++;
          controller.enqueue(new TextEncoder().encode(text));
          controller.close();
        },
      },
      { highWaterMark: 0 },
    );
    const request = new Request("http://localhost/v1/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...headers },
      body,
      duplex: "half",
    } as RequestInit);
    return { request, pulls: () => pulls };
  }
});
