import { beforeEach, describe, expect, test } from "bun:test";
import pkg from "../../../package.json" with { type: "json" };
import { EngineError } from "../../../src/engine/errors.ts";
import { testApp } from "../../helpers/app.ts";
import { expectProblem } from "../../helpers/http.ts";

const { app, repository } = testApp();
beforeEach(() => repository.reset());

const status = (name: string, state: string, error?: string) => ({
  name,
  version: "1.0.0",
  task: "tabular-classification",
  state,
  ...(error ? { error } : {}),
});

describe("GET /health", () => {
  test("is 200 with the version, the uptime and every model's state", async () => {
    repository.setState("wine", "loading");
    const res = await app.request("/health");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({
      status: "ok",
      version: pkg.version,
      uptime_seconds: expect.any(Number),
      models: [status("iris", "ready"), status("wine", "loading")],
    });
    expect(body.uptime_seconds as number).toBeGreaterThanOrEqual(0);
  });

  test("stays 200 when a model failed", async () => {
    repository.setState("iris", "failed", "boom");
    const res = await app.request("/health");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { models: unknown[] }).models).toEqual([status("iris", "failed", "boom"), status("wine", "ready")]);
  });
});

describe("GET /readiness", () => {
  test("is 200 when every model is ready and passes its self-test", async () => {
    const res = await app.request("/readiness");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ready", models: [status("iris", "ready"), status("wine", "ready")] });
  });

  test("is a 503 problem with Retry-After while a model loads", async () => {
    repository.setState("wine", "loading");
    const res = await app.request("/readiness");
    expect(res.headers.get("retry-after")).toBe("1");
    const body = await expectProblem(res, 503, "/readiness");
    expect(body).toEqual({ type: "/problems/not-ready", title: "Not ready", status: 503, detail: "wine is loading", instance: "/readiness" });
  });

  test("is a 503 problem with Retry-After when a model failed to load, saying why", async () => {
    repository.setState("iris", "failed", "no such file");
    repository.setState("wine", "loading");
    const res = await app.request("/readiness");
    expect(res.headers.get("retry-after")).toBe("1");
    const body = await expectProblem(res, 503, "/readiness");
    expect(body.detail).toBe("iris is failed (no such file); wine is loading");
  });

  test("is a 503 when a loaded model fails its self-test", async () => {
    repository.model("wine").selfTestFailure = new EngineError("inference_failed", "self-test produced non-finite probabilities");
    const body = await expectProblem(await app.request("/readiness"), 503, "/readiness");
    expect(body.detail).toBe("wine is failed (self-test failed: self-test produced non-finite probabilities)");
  });
});
