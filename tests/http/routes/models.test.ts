import { beforeEach, describe, expect, test } from "bun:test";
import { EngineError } from "../../../src/engine/errors.ts";
import { testApp } from "../../helpers/app.ts";
import { expectProblem } from "../../helpers/http.ts";

const { app, repository } = testApp();
beforeEach(() => repository.reset());

const status = (name: string, state: string) => ({ name, version: "1.0.0", task: "tabular-classification", state });

describe("POST /v1/models/{name}/reload", () => {
  test("reloads the model and answers its status", async () => {
    repository.setState("wine", "failed", "bad file");
    const res = await app.request("/v1/models/wine/reload", { method: "POST" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.json()).toEqual(status("wine", "ready"));
    expect(repository.reloads).toEqual(["wine"]);
  });

  test("an unknown model is a 404 problem", async () => {
    const body = await expectProblem(await app.request("/v1/models/nope/reload", { method: "POST" }), 404, "/v1/models/nope/reload");
    expect(body).toMatchObject({ type: "/problems/model-not-found", title: "Model not found", detail: "no model named 'nope'; available: iris, wine" });
    expect(repository.reloads).toEqual([]);
  });

  test("GET is not a reload: 405, allowing POST", async () => {
    const res = await app.request("/v1/models/iris/reload");
    expect(res.headers.get("allow")).toBe("POST");
    await expectProblem(res, 405, "/v1/models/iris/reload");
    expect(repository.reloads).toEqual([]);
  });

  test("a reload that fails is a 422 load-failed problem with the reason, never a 500", async () => {
    repository.reloadFailure = new EngineError("load_failed", "model 'wine' could not be loaded: wine/model.json: labels: must hold at least 2 items");
    const body = await expectProblem(await app.request("/v1/models/wine/reload", { method: "POST" }), 422, "/v1/models/wine/reload");
    expect(body).toEqual({
      type: "/problems/load-failed",
      title: "Model failed to load",
      status: 422,
      detail: "model 'wine' could not be loaded: wine/model.json: labels: must hold at least 2 items",
      instance: "/v1/models/wine/reload",
    });
  });
});
