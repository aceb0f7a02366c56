/**
 * X-Process-Time and Server-Timing on every response (queue and inference from the real engine on predictions),
 * and request ids: a sane client id is kept, anything else replaced by a UUID, and problem bodies carry it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ModelRepository } from "../../../src/engine/registry/repository.ts";
import { engineOptions } from "../../helpers/engine.ts";
import { expectOpenAIError, expectProblem } from "../../helpers/http.ts";
import { modelsDirWith } from "../../helpers/models-dir.ts";
import { testApp, send, SETOSA, UUID, type Sendable } from "../../helpers/app.ts";
import { makeKeys } from "../../helpers/keys.ts";

const { store: keys, secret } = makeKeys([
  { name: "timer", scopes: ["predict", "generate"] },
  { name: "tight", scopes: ["predict"], rateLimit: { capacity: 1, refillPerSecond: 0.01 } },
]);
const predict: Sendable = { method: "POST", path: "/v1/predict", body: { features: SETOSA } };

const PROCESS_TIME = /^\d+\.\d{6}$/;

/** The Server-Timing metrics as name → duration in ms. */
function serverTiming(res: Response): Record<string, number> {
  const header = res.headers.get("server-timing") ?? "";
  return Object.fromEntries(
    header
      .split(",")
      .filter((m) => m.trim())
      .map((metric) => {
        const [name, ...params] = metric.trim().split(";");
        const dur = params.find((p) => p.startsWith("dur="));
        return [name!, dur ? Number(dur.slice(4)) : Number.NaN];
      }),
  );
}

function expectTimed(name: string, res: Response) {
  const processTime = res.headers.get("x-process-time");
  expect({ name, processTime }).toEqual({ name, processTime: expect.stringMatching(PROCESS_TIME) });
  expect(Number(processTime)).toBeGreaterThanOrEqual(0);
  expect(res.headers.get("server-timing")).toMatch(/(^|, )total;dur=\d+(\.\d+)?$/);
  const total = serverTiming(res).total!;
  expect(Number.isFinite(total) && total >= 0).toBe(true);
}

describe("X-Process-Time and Server-Timing", () => {
  test("on every kind of response: 200, 404, 422, 401, 403, 413, 429, OpenAI errors, preflights", async () => {
    const { app } = testApp({ keys, env: { BODY_LIMIT_BYTES: "128" } });
    const key = { "X-API-Key": secret.timer };
    const responses: [string, number, Response][] = [
      ["success", 200, await send(app, predict, key)],
      ["public", 200, await app.request("/health")],
      ["unknown path", 404, await app.request("/nowhere")],
      ["unknown model", 404, await send(app, { ...predict, path: "/v1/models/nope/predict" }, key)],
      ["validation", 422, await send(app, { ...predict, body: { features: [1, 2] } }, key)],
      ["no key", 401, await send(app, predict)],
      ["wrong scope", 403, await send(app, { method: "POST", path: "/v1/models/iris/reload" }, key)],
      ["too large", 413, await send(app, { ...predict, body: JSON.stringify({ features: SETOSA, pad: "x".repeat(200) }) }, key)],
      ["first of tight", 200, await send(app, predict, { "X-API-Key": secret.tight })],
      ["rate limited", 429, await send(app, predict, { "X-API-Key": secret.tight })],
      ["openai 401", 401, await send(app, { method: "POST", path: "/v1/completions", body: {} })],
      ["openai 404", 404, await send(app, { method: "POST", path: "/v1/completions", body: { model: "nope", prompt: "x" } }, key)],
      ["preflight", 204, await app.request("/v1/predict", { method: "OPTIONS", headers: { Origin: "https://x.example", "Access-Control-Request-Method": "POST" } })],
    ];
    for (const [name, status, res] of responses) {
      expect({ name, status: res.status }).toEqual({ name, status });
      expectTimed(name, res);
    }
  });
});

describe("Server-Timing from the real engine", () => {
  let repository: ModelRepository;
  let app: ReturnType<typeof testApp<ModelRepository>>["app"];
  beforeAll(async () => {
    repository = new ModelRepository(modelsDirWith(["iris"]), engineOptions());
    ({ app } = testApp({ keys, catalog: repository }));
    await repository.loadAll();
    expect(repository.status().map((s) => s.state)).toEqual(["ready"]);
  });
  afterAll(async () => {
    await repository?.close();
  });

  test("/v1/predict reports queue and inference beside total", async () => {
    for (const route of [predict, { ...predict, path: "/v1/models/iris/predict" }, { method: "POST" as const, path: "/v1/predict/batch", body: { instances: [SETOSA, SETOSA] } }]) {
      const res = await send(app, route, { "X-API-Key": secret.timer });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { label?: string; predictions?: { label: string }[] };
      expect(body.label ?? body.predictions?.[0]?.label).toBe("setosa");
      const metrics = serverTiming(res);
      expect(Object.keys(metrics).sort()).toEqual(["inference", "queue", "total"]);
      for (const [name, ms] of Object.entries(metrics)) expect({ name, ok: Number.isFinite(ms) && ms >= 0 }).toEqual({ name, ok: true });
      expect(res.headers.get("server-timing")).toMatch(/(^|, )queue;dur=\d+(\.\d+)?(,|$)/);
      expect(res.headers.get("server-timing")).toMatch(/(^|, )inference;dur=\d+(\.\d+)?(,|$)/);
      expectTimed(route.path, res);
    }
  });

  test("a refused prediction reports total only", async () => {
    const res = await send(app, predict);
    expect(res.status).toBe(401);
    expect(Object.keys(serverTiming(res))).toEqual(["total"]);
  });
});

describe("X-Request-Id", () => {
  const { app } = testApp({ keys });

  test("a sane client id is echoed, and is the request_id of a problem", async () => {
    for (const id of ["abc-123", "A_b=c", "x".repeat(255), "0"]) {
      const ok = await send(app, predict, { "X-API-Key": secret.timer, "X-Request-Id": id });
      expect(ok.status).toBe(200);
      expect(ok.headers.get("x-request-id")).toBe(id);
      const problem = await app.request("/nowhere", { headers: { "X-Request-Id": id } });
      expect(problem.headers.get("x-request-id")).toBe(id);
      expect(((await problem.json()) as { request_id: string }).request_id).toBe(id);
    }
  });

  test("an insane one (spaces, 256+ characters, other punctuation, empty) is replaced by a new UUID", async () => {
    const seen = new Set<string>();
    for (const id of ["abc 123", "x".repeat(256), "y".repeat(300), "abc/123", "a.b", "id\ttab", "<script>", ""]) {
      const res = await send(app, predict, { "X-API-Key": secret.timer, "X-Request-Id": id });
      expect(res.status).toBe(200);
      const given = res.headers.get("x-request-id")!;
      expect({ id, given }).toEqual({ id, given: expect.stringMatching(UUID) });
      seen.add(given);
    }
    expect(seen.size).toBe(8);
  });

  test("without one, each response gets its own UUID", async () => {
    const a = await app.request("/health");
    const b = await app.request("/health");
    expect(a.headers.get("x-request-id")).toMatch(UUID);
    expect(b.headers.get("x-request-id")).toMatch(UUID);
    expect(a.headers.get("x-request-id")).not.toBe(b.headers.get("x-request-id"));
  });

  test("problem bodies carry the response's id as request_id: 401, 403, 404, 413, 422, 429", async () => {
    const t = testApp({ keys, env: { BODY_LIMIT_BYTES: "128" } });
    const key = { "X-API-Key": secret.timer };
    const cases: [number, string, Response][] = [
      [401, "/v1/predict", await send(t.app, predict)],
      [403, "/v1/models/iris/reload", await send(t.app, { method: "POST", path: "/v1/models/iris/reload" }, key)],
      [404, "/v1/models/nope/predict", await send(t.app, { ...predict, path: "/v1/models/nope/predict" }, key)],
      [413, "/v1/predict", await send(t.app, { ...predict, body: JSON.stringify({ features: SETOSA, pad: "x".repeat(200) }) }, key)],
      [422, "/v1/predict", await send(t.app, { ...predict, body: { features: "four numbers" } }, key)],
      [200, "/v1/predict", await send(t.app, predict, { "X-API-Key": secret.tight })],
      [429, "/v1/predict", await send(t.app, predict, { "X-API-Key": secret.tight, "X-Request-Id": "client-429" })],
    ];
    for (const [status, instance, res] of cases) {
      if (status === 200) continue;
      const id = res.headers.get("x-request-id")!;
      expect(id).toBeTruthy();
      const clone = res.clone();
      await expectProblem(res, status, instance);
      expect(((await clone.json()) as { request_id?: string }).request_id).toBe(id);
    }
    expect(cases.at(-1)![2].headers.get("x-request-id")).toBe("client-429");
  });

  test("OpenAI-shaped errors keep the X-Request-Id header (their body has no place for it)", async () => {
    const res = await send(app, { method: "POST", path: "/v1/chat/completions", body: {} }, { "X-Request-Id": "chat-1" });
    expect(res.headers.get("x-request-id")).toBe("chat-1");
    await expectOpenAIError(res, 401, "authentication_error");
  });
});
