/**
 * API keys through the assembled app (createApp with a KeyStore, as boot.ts builds it): which routes need which
 * scope, how refusals look (problem+json, or OpenAI's error shape on the OpenAI routes), where a key may be sent,
 * and that the OpenAPI document declares exactly what the middleware enforces.
 */
import { beforeEach, describe, expect, test } from "bun:test";
import { Hono, type Context } from "hono";
import { createKeyStore, generateKey, hashKey, parseKeyFile, type KeyStore, type Scope } from "../../../src/auth/key-store.ts";
import { apiKeyAuth, type ApiKeyAuthOptions, type ApiKeyVariables } from "../../../src/http/middleware/api-key.ts";
import { problemErrorHandler } from "../../../src/http/problem.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { pathOf, send, SETOSA, SETOSA_NAMED, stableHeaders, testApp, WINE_CLASS_0, type Sendable } from "../../helpers/app.ts";
import { expectOpenAIError, expectProblem } from "../../helpers/http.ts";
import { makeKeys } from "../../helpers/keys.ts";

describe("apiKeyAuth on its own, in a small app per configuration", () => {
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
});

const { store: keys, secret } = makeKeys([
  { name: "predictor", scopes: ["predict"] },
  { name: "generator", scopes: ["generate"] },
  { name: "operator", scopes: ["admin"] },
  { name: "everything", scopes: ["predict", "generate", "admin"] },
]);
const UNKNOWN_KEY = "osk_thisKeyIsNotInTheStoreAtAll0000000000000000";
type HeaderSet = Record<string, string>;

type Protected = Sendable & {
  scope: Scope;
  /** OpenAI-compatible route: errors in OpenAI's shape. */
  openai?: boolean;
  /** The status once past authentication (the fake repository has no text model, so generation answers 404). */
  reached: number;
};

const PROTECTED: Protected[] = [
  { method: "POST", path: "/v1/predict", body: { features: SETOSA }, scope: "predict", reached: 200 },
  { method: "POST", path: "/v1/predict/batch", body: { instances: [SETOSA, SETOSA] }, scope: "predict", reached: 200 },
  { method: "POST", path: "/v1/models/wine/predict", body: { features: WINE_CLASS_0 }, scope: "predict", reached: 200 },
  { method: "POST", path: "/v2/predict", body: SETOSA_NAMED, scope: "predict", reached: 200 },
  { method: "POST", path: "/predict", body: { features: SETOSA }, scope: "predict", reached: 200 },
  { method: "POST", path: "/predict", headers: { "API-Version": "2" }, body: SETOSA_NAMED, scope: "predict", reached: 200 },
  { method: "POST", path: "/v1/models/iris/reload", scope: "admin", reached: 200 },
  { method: "GET", path: "/v1/generate?prompt=In%20the%20beginning", scope: "generate", reached: 404 },
  { method: "POST", path: "/v1/generate", body: { prompt: "In the beginning" }, scope: "generate", reached: 404 },
  { method: "POST", path: "/v1/completions", body: { model: "kjv-gpt", prompt: "In the beginning" }, scope: "generate", openai: true, reached: 404 },
  {
    method: "POST",
    path: "/v1/chat/completions",
    body: { model: "kjv-gpt", messages: [{ role: "user", content: "In the beginning" }] },
    scope: "generate",
    openai: true,
    reached: 404,
  },
];

/** The protected route `method path` (the first, for POST /predict). */
function protectedRoute(name: string): Protected {
  const found = PROTECTED.find((r) => `${r.method} ${pathOf(r.path)}` === name);
  if (!found) throw new Error(`no protected route ${name}`);
  return found;
}

const PUBLIC: Sendable[] = [
  { method: "GET", path: "/health" },
  { method: "GET", path: "/readiness" },
  { method: "GET", path: "/doc" },
  { method: "GET", path: "/openapi.json" },
  { method: "GET", path: "/docs" },
  { method: "GET", path: "/" },
  { method: "GET", path: "/v1/models" },
  { method: "GET", path: "/v1/models/iris" },
];

/** A key that lacks `scope`. */
const keyWithout = (scope: Scope) => (scope === "predict" ? secret.generator : secret.predictor);
const keyWith = (scope: Scope) => ({ predict: secret.predictor, generate: secret.generator, admin: secret.operator })[scope];
const label = (r: Sendable) => `${r.method} ${r.path}${r.headers?.["API-Version"] ? ` (API-Version ${r.headers["API-Version"]})` : ""}`;

const { app, repository } = testApp({ keys });
beforeEach(() => repository.reset());

/** Work the handlers did: rows predicted by any model, and reloads. */
const handlerWork = () => repository.model("iris").calls.length + repository.model("wine").calls.length + repository.reloads.length;

describe("a key holding the route's scope", () => {
  for (const route of PROTECTED) {
    test(`${label(route)} with scope '${route.scope}', by X-API-Key and by Authorization: Bearer`, async () => {
      for (const headers of [{ "X-API-Key": keyWith(route.scope) }, { Authorization: `Bearer ${keyWith(route.scope)}` }, { "X-API-Key": secret.everything }] as HeaderSet[]) {
        const res = await send(app, route, headers);
        const text = await res.text();
        expect({ status: res.status, text }).toMatchObject({ status: route.reached });
        expect(res.headers.get("www-authenticate")).toBeNull();
      }
      // The prediction (one model call per request) or the reload really ran, once per request.
      if (route.reached === 200) expect(handlerWork()).toBe(3);
    });
  }

  test("the prediction answers come from the model behind the route", async () => {
    const res = await send(app, protectedRoute("POST /v1/models/wine/predict"), { "X-API-Key": secret.predictor });
    expect(await res.json()).toMatchObject({ model: "wine", label: "class_0" });
    expect(repository.model("wine").calls).toEqual([[WINE_CLASS_0]]);
  });
});

describe("refusals on problem+json routes", () => {
  const routes = PROTECTED.filter((r) => !r.openai);

  test("no key: 401 problem+json with WWW-Authenticate, and the handler does not run", async () => {
    for (const route of routes) {
      const res = await send(app, route);
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="api"');
      const body = await expectProblem(res, 401, pathOf(route.path));
      expect(body.type).toBe("/problems/unauthorized");
      expect(body.detail).toContain(`'${route.scope}' scope`);
    }
    expect(handlerWork()).toBe(0);
  });

  test("an unknown key, by either header: 401 invalid_token", async () => {
    for (const route of routes) {
      for (const headers of [{ "X-API-Key": UNKNOWN_KEY }, { Authorization: `Bearer ${UNKNOWN_KEY}` }] as HeaderSet[]) {
        const res = await send(app, route, headers);
        expect(res.headers.get("www-authenticate")).toBe('Bearer realm="api", error="invalid_token"');
        const body = await expectProblem(res, 401, pathOf(route.path));
        expect(JSON.stringify(body)).not.toContain(UNKNOWN_KEY);
      }
    }
    expect(handlerWork()).toBe(0);
  });

  test("a key without the route's scope: 403 insufficient_scope naming the scope", async () => {
    for (const route of routes) {
      const res = await send(app, route, { "X-API-Key": keyWithout(route.scope) });
      expect(res.headers.get("www-authenticate")).toBe(`Bearer realm="api", error="insufficient_scope", scope="${route.scope}"`);
      const body = await expectProblem(res, 403, pathOf(route.path));
      expect(body.type).toBe("/problems/forbidden");
      expect(body.detail).toContain(`'${route.scope}' scope`);
    }
    // admin alone does not imply predict, nor predict admin.
    expect((await send(app, protectedRoute("POST /v1/predict"), { "X-API-Key": secret.operator })).status).toBe(403);
    expect((await send(app, protectedRoute("POST /v1/models/iris/reload"), { "X-API-Key": secret.predictor })).status).toBe(403);
    expect(handlerWork()).toBe(0);
  });

  test("an Authorization header that is not Bearer counts as no key", async () => {
    const res = await send(app, protectedRoute("POST /v1/predict"), { Authorization: `Basic ${btoa(`user:${secret.predictor}`)}` });
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="api"');
    await expectProblem(res, 401, "/v1/predict");
  });
});

describe("refusals on the OpenAI routes come in OpenAI's error shape, with the same status and headers", () => {
  const openai = PROTECTED.filter((r) => r.openai);
  // POST /v1/generate needs the same scope and answers problem+json: its refusals are the reference.
  const reference = protectedRoute("POST /v1/generate");

  const cases: { name: string; headers: Record<string, string>; status: number; type: string }[] = [
    { name: "no key", headers: {}, status: 401, type: "authentication_error" },
    { name: "an unknown key", headers: { "X-API-Key": UNKNOWN_KEY }, status: 401, type: "authentication_error" },
    { name: "a key without 'generate'", headers: { Authorization: `Bearer ${secret.predictor}` }, status: 403, type: "permission_error" },
  ];
  for (const { name, headers, status, type } of cases) {
    test(`${name}: ${status} ${type}`, async () => {
      const expected = await send(app, reference, headers);
      expect(expected.status).toBe(status);
      const problem = (await expected.json()) as { detail: string };
      // Refusals are charged to the client's address, so the bucket's counts move from one response to the next.
      const unlimited = (res: Response) => Object.fromEntries(Object.entries(stableHeaders(res)).filter(([name]) => !name.includes("ratelimit")));
      for (const route of openai) {
        const res = await send(app, route, headers);
        expect(unlimited(res)).toEqual(unlimited(expected));
        expect(res.headers.get("ratelimit-policy")).toBe(expected.headers.get("ratelimit-policy"));
        expect(res.headers.get("www-authenticate")).toStartWith('Bearer realm="api"');
        expect(res.headers.get("x-request-id")).toBeTruthy();
        const error = await expectOpenAIError(res, status, type);
        expect(error.message).toBe(problem.detail);
        expect(error.code).toBe(status === 401 ? "invalid_api_key" : "forbidden");
        expect(error.param).toBeNull();
      }
    });
  }

  test("an empty bucket: 429 rate_limit_error with Retry-After and the RateLimit headers", async () => {
    const limited = makeKeys([{ name: "chatty", scopes: ["generate"], rateLimit: { capacity: 1, refillPerSecond: 0.5 } }]);
    const headers = { "X-API-Key": limited.secret.chatty };
    for (const route of openai) {
      // Fresh apps, so both start with a full bucket of one.
      const reference429 = testApp({ keys: limited.store });
      expect((await send(reference429.app, reference, headers)).status).toBe(404);
      const expected = await send(reference429.app, reference, headers);
      await expectProblem(expected, 429, "/v1/generate");

      const { app: fresh } = testApp({ keys: limited.store });
      expect((await send(fresh, route, headers)).status).toBe(404);
      const res = await send(fresh, route, headers);
      expect(stableHeaders(res)).toEqual(stableHeaders(expected));
      expect(res.headers.get("retry-after")).toBe("2");
      // The key's own policy, named after it.
      expect(res.headers.get("ratelimit")).toBe('"chatty";r=0;t=2');
      const error = await expectOpenAIError(res, 429, "rate_limit_error");
      expect(error.code).toBe("rate_limited");
    }
  });

  test("past authentication, the route's own errors are OpenAI-shaped too (here: no such model)", async () => {
    for (const route of openai) {
      const error = await expectOpenAIError(await send(app, route, { "X-API-Key": secret.generator }), 404, "invalid_request_error");
      expect(error.param).toBe("model");
    }
  });
});

describe("the api_key query parameter", () => {
  const streamGet: Sendable = { method: "GET", path: "/v1/generate?prompt=In%20the%20beginning" };

  test("is accepted on GET /v1/generate (EventSource cannot send headers)", async () => {
    const ok = await send(app, { ...streamGet, path: `${streamGet.path}&api_key=${encodeURIComponent(secret.generator)}` });
    expect(ok.status).toBe(404); // past authentication: the fake repository has no text model
    expect(((await ok.json()) as { detail: string }).detail).toBe("this server has no text-generation model");
    const unknown = await send(app, { ...streamGet, path: `${streamGet.path}&api_key=${UNKNOWN_KEY}` });
    await expectProblem(unknown, 401, "/v1/generate");
    const wrongScope = await send(app, { ...streamGet, path: `${streamGet.path}&api_key=${encodeURIComponent(secret.predictor)}` });
    await expectProblem(wrongScope, 403, "/v1/generate");
  });

  test("is ignored everywhere else: POST /v1/predict, POST /v1/generate, POST /v1/completions", async () => {
    const q = `?api_key=${encodeURIComponent(secret.everything)}`;
    for (const route of ["POST /v1/predict", "POST /v1/generate", "POST /v1/models/iris/reload"].map(protectedRoute)) {
      const res = await send(app, { ...route, path: route.path + q });
      await expectProblem(res, 401, route.path);
    }
    const completions = await send(app, { ...protectedRoute("POST /v1/completions"), path: `/v1/completions${q}` });
    await expectOpenAIError(completions, 401, "authentication_error");
    expect(handlerWork()).toBe(0);
  });
});

describe("public routes", () => {
  for (const route of PUBLIC) {
    test(`${label(route)} needs no key, and a bad one does not hurt`, async () => {
      for (const headers of [{}, { "X-API-Key": UNKNOWN_KEY }, { Authorization: "Bearer nonsense" }] as HeaderSet[]) {
        const res = await send(app, route, headers);
        expect(res.status).toBe(200);
        expect(res.headers.get("www-authenticate")).toBeNull();
        await res.arrayBuffer();
      }
    });
  }

  test("an unknown path is a 404, not a 401", async () => {
    await expectProblem(await send(app, { method: "POST", path: "/v1/nothing-here" }), 404, "/v1/nothing-here");
  });

  test("HEAD /v1/generate without a key is refused like GET (401), and the handler does not run", async () => {
    const head = await send(app, { method: "HEAD", path: "/v1/generate?prompt=In%20the%20beginning" });
    expect(head.status).toBe(401); // today: 404 from the handler, which ran ("this server has no text-generation model")
    expect(head.headers.get("www-authenticate")).toBe('Bearer realm="api"');
  });
});

describe("without keys (authentication off)", () => {
  const open = testApp();

  test("every protected route is open, with no key and with any key", async () => {
    for (const route of PROTECTED) {
      for (const headers of [{}, { "X-API-Key": UNKNOWN_KEY }] as HeaderSet[]) {
        const res = await send(open.app, route, headers);
        const text = await res.text();
        expect({ route: label(route), status: res.status, text }).toMatchObject({ status: route.reached });
        expect(res.headers.get("www-authenticate")).toBeNull();
      }
    }
  });

  test("public routes stay open", async () => {
    for (const route of PUBLIC) expect((await send(open.app, route)).status).toBe(200);
  });
});

type Operation = { security?: Record<string, string[]>[]; [k: string]: unknown };
type OpenAPIDoc = { security?: unknown; components: { securitySchemes?: Record<string, unknown> }; paths: Record<string, Record<string, Operation>> };

describe("the OpenAPI document declares what the middleware enforces", () => {
  const SCOPES: Record<string, Scope | null> = {
    "post /v1/predict": "predict",
    "post /v1/predict/batch": "predict",
    "post /v1/models/{name}/predict": "predict",
    "post /v2/predict": "predict",
    "post /predict": "predict",
    "post /v1/classify": "predict",
    "post /v1/models/{name}/classify": "predict",
    "post /v1/models/{name}/reload": "admin",
    "post /v1/models": "admin",
    "put /v1/models/{name}": "admin",
    "delete /v1/models/{name}": "admin",
    "post /v1/models/{name}/rollback": "admin",
    "get /v1/generate": "generate",
    "post /v1/generate": "generate",
    "post /v1/completions": "generate",
    "post /v1/chat/completions": "generate",
    "get /health": null,
    "get /readiness": null,
    "get /v1/models": null,
    "get /v1/models/{model}": null,
    "post /v2/models/{name}/infer": "predict",
    "post /v2/models/{name}/versions/{version}/infer": "predict",
    "get /v2": null,
    "get /v2/health/live": null,
    "get /v2/health/ready": null,
    "get /v2/models/{name}": null,
    "get /v2/models/{name}/ready": null,
    "get /v2/models/{name}/versions/{version}": null,
    "get /v2/models/{name}/versions/{version}/ready": null,
  };
  let doc: OpenAPIDoc;
  beforeEach(async () => {
    doc ??= (await (await app.request("/openapi.json")).json()) as OpenAPIDoc;
  });
  const operations = () => Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => [`${method} ${path}`, op] as const));

  test("securitySchemes: ApiKeyAuth (X-API-Key header), BearerAuth (HTTP bearer) and ApiKeyQuery (api_key in the query)", () => {
    const schemes = doc.components.securitySchemes!;
    expect(Object.keys(schemes).sort()).toEqual(["ApiKeyAuth", "ApiKeyQuery", "BearerAuth"]);
    expect(schemes.ApiKeyAuth).toMatchObject({ type: "apiKey", in: "header", name: "X-API-Key" });
    expect(schemes.BearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    expect(schemes.ApiKeyQuery).toMatchObject({ type: "apiKey", in: "query", name: "api_key" });
    // No document-wide requirement that public operations would inherit.
    expect(doc.security).toBeUndefined();
  });

  test("each protected operation's security names its scope under both header schemes (the query one too on GET /v1/generate alone); public ones have none", () => {
    const found = Object.fromEntries(operations().map(([name, op]) => [name, op.security]));
    expect(Object.keys(found).sort()).toEqual(Object.keys(SCOPES).sort());
    for (const [name, scope] of Object.entries(SCOPES)) {
      const query = name === "get /v1/generate" && scope ? [{ ApiKeyQuery: [scope] }] : [];
      expect({ name, security: found[name] }).toEqual({ name, security: scope ? [{ ApiKeyAuth: [scope] }, { BearerAuth: [scope] }, ...query] : undefined });
    }
  });

  test("every operation asked without a key: 401 exactly when its security says so", async () => {
    for (const [name, op] of operations()) {
      const [method, template] = name.split(" ") as [string, string];
      const path = template.replace("{name}", "iris").replace("{model}", "iris");
      const res = await app.request(path, { method: method.toUpperCase() });
      await res.arrayBuffer();
      expect({ name, status: res.status === 401 ? 401 : "not 401" }).toEqual({ name, status: op.security ? 401 : "not 401" });
    }
  });
});
