import { describe, expect, test } from "bun:test";
import { Hono, type Context } from "hono";
import { apiKeyAuth, createKeyStore, generateKey, hashKey, parseKeyFile, type ApiKeyAuthOptions, type ApiKeyVariables, type KeyStore, type Scope } from "../../../src/http/middleware/api-key.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { problemErrorHandler } from "../../../src/http/problem.ts";

const predictKey = generateKey();
const adminKey = generateKey();
const keys: KeyStore = createKeyStore(
  parseKeyFile(
    {
      keys: [
        { name: "predictor", sha256: hashKey(predictKey), scopes: ["predict"], rateLimit: { capacity: 5, refillPerSecond: 2 } },
        { name: "operator", sha256: hashKey(adminKey), scopes: ["predict", "generate", "admin"] },
      ],
    },
    "test keys",
  ),
);

const routeScopes: Record<string, Scope> = { "/predict": "predict", "/generate": "generate", "/stream": "generate", "/admin": "admin" };

/** A small app: /health is public, the others need the scope above; `handled` lists the paths whose handler ran. */
function makeApp(options: Partial<ApiKeyAuthOptions> = {}) {
  const handled: string[] = [];
  const app = new Hono<{ Variables: ApiKeyVariables }>();
  app.use(apiKeyAuth({ keys, scopeFor: (c) => routeScopes[c.req.path], ...options }));
  const handler = (c: Context<{ Variables: ApiKeyVariables }>) => {
    handled.push(c.req.path);
    const key = c.get("apiKey");
    return c.json({ name: key?.name ?? null, scopes: key?.scopes ?? null, rateLimit: key?.rateLimit ?? null });
  };
  for (const path of ["/health", ...Object.keys(routeScopes)]) app.get(path, handler);
  app.onError(problemErrorHandler(createLogger("silent")));
  return { app, handled };
}

const { app, handled } = makeApp();

async function get(path: string, headers: Record<string, string> = {}, target = app) {
  const res = await target.request(path, { headers });
  return { res, status: res.status, body: (await res.json()) as Record<string, unknown>, challenge: res.headers.get("www-authenticate") };
}

/** Asserts a problem+json refusal and that no handler ran for it. */
async function refused(path: string, headers: Record<string, string>, status: number, target = makeApp()) {
  const r = await get(path, headers, target.app);
  expect(r.status).toBe(status);
  expect(r.res.headers.get("content-type")).toBe("application/problem+json");
  expect(r.body.status).toBe(status);
  expect(r.body.instance).toBe(new URL(path, "http://x").pathname);
  expect(target.handled).toEqual([]);
  // However it is refused, the key presented is never echoed back.
  const presented = `${decodeURIComponent(path)} ${Object.values(headers).join(" ")}`.match(/osk_[\w-]+/g) ?? [];
  for (const key of presented) expect(JSON.stringify(r.body) + r.challenge).not.toContain(key);
  return r;
}

describe("apiKeyAuth", () => {
  test("a public route needs no key", async () => {
    const r = await get("/health");
    expect(r.status).toBe(200);
    expect(r.body.name).toBeNull();
  });

  test("a public route ignores a bad key", async () => {
    expect((await get("/health", { "X-API-Key": "osk_nonsense" })).status).toBe(200);
  });

  test("a protected route without a key is 401 with a challenge", async () => {
    const r = await refused("/predict", {}, 401);
    expect(r.challenge).toBe('Bearer realm="api"');
    expect(r.body.type).toBe("/problems/unauthorized");
    expect(r.body.title).toBe("Unauthorized");
    expect(r.body.detail).toContain("'predict' scope");
  });

  test("a malformed Authorization header counts as no key", async () => {
    for (const authorization of ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", `Token ${predictKey}`, `Bearer ${predictKey} extra`]) {
      const r = await refused("/predict", { Authorization: authorization }, 401);
      expect(r.challenge).toBe('Bearer realm="api"');
    }
  });

  test("an unknown key is 401 invalid_token", async () => {
    const near = predictKey.slice(0, -1) + (predictKey.endsWith("A") ? "B" : "A");
    const attempts: Record<string, string>[] = [{ "X-API-Key": generateKey() }, { Authorization: `Bearer ${near}` }];
    for (const headers of attempts) {
      const r = await refused("/predict", headers, 401);
      expect(r.challenge).toBe('Bearer realm="api", error="invalid_token"');
      expect(r.body.type).toBe("/problems/unauthorized");
    }
  });

  test("a key without the route's scope is 403 insufficient_scope", async () => {
    const r = await refused("/admin", { "X-API-Key": predictKey }, 403);
    expect(r.challenge).toBe('Bearer realm="api", error="insufficient_scope", scope="admin"');
    expect(r.body.type).toBe("/problems/forbidden");
    expect(r.body.title).toBe("Forbidden");
    expect(r.body.detail).toContain("'admin' scope");
  });

  test("two different keys at once are 401", async () => {
    const r = await refused("/predict", { "X-API-Key": predictKey, Authorization: `Bearer ${adminKey}` }, 401);
    expect(r.challenge).toBe('Bearer realm="api", error="invalid_request"');
  });

  test("the same key in both headers is accepted", async () => {
    expect((await get("/predict", { "X-API-Key": predictKey, Authorization: `Bearer ${predictKey}` })).status).toBe(200);
  });

  test("a key with the scope passes by X-API-Key, and the handler sees it", async () => {
    const before = handled.length;
    const r = await get("/predict", { "X-API-Key": predictKey });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ name: "predictor", scopes: ["predict"], rateLimit: { capacity: 5, refillPerSecond: 2 } });
    expect(handled.slice(before)).toEqual(["/predict"]);
  });

  test("a key with the scope passes by Authorization: Bearer (any case)", async () => {
    for (const scheme of ["Bearer", "bearer"]) {
      const r = await get("/admin", { Authorization: `${scheme} ${adminKey}` });
      expect(r.status).toBe(200);
      expect(r.body.name).toBe("operator");
    }
  });

  test("a key in the query string counts only where queryParam allows it", async () => {
    const withQuery = () => makeApp({ queryParam: (c) => (c.req.path === "/stream" ? c.req.query("api_key") : undefined) });
    const allowed = withQuery();
    const r = await get(`/stream?api_key=${encodeURIComponent(adminKey)}`, {}, allowed.app);
    expect(r.status).toBe(200);
    expect(r.body.name).toBe("operator");
    // Elsewhere the same parameter is not read, on the app that allows it or on one without queryParam.
    expect((await get(`/generate?api_key=${encodeURIComponent(adminKey)}`, {}, allowed.app)).status).toBe(401);
    expect((await get(`/stream?api_key=${encodeURIComponent(adminKey)}`)).status).toBe(401);
    // A query key that disagrees with a header key is as ambiguous as two headers.
    await refused(`/stream?api_key=${encodeURIComponent(adminKey)}`, { "X-API-Key": predictKey }, 401, withQuery());
  });

  test("the realm is configurable", async () => {
    const r = await refused("/predict", {}, 401, makeApp({ realm: "models" }));
    expect(r.challenge).toBe('Bearer realm="models"');
  });

  test("configuration mistakes throw at construction", () => {
    expect(() => apiKeyAuth({ scopeFor: () => undefined } as unknown as ApiKeyAuthOptions)).toThrow("options.keys");
    expect(() => apiKeyAuth({ keys } as unknown as ApiKeyAuthOptions)).toThrow("options.scopeFor");
    expect(() => apiKeyAuth({ keys, scopeFor: () => undefined, realm: 'a"b' })).toThrow("options.realm");
    expect(() => apiKeyAuth({ keys, scopeFor: () => undefined, realm: "" })).toThrow("options.realm");
  });
});
