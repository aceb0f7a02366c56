/**
 * Model administration routes: the upload form (every wrong field named), body limits, names that could leave the
 * models folder, the admin scope, the answers' shapes; and, over a real repository, that a new version's manifest
 * is what /v1/models/{name}/predict and /doc follow.
 */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { EngineError } from "../../../src/engine/errors.ts";
import { ModelRepository } from "../../../src/engine/registry/repository.ts";
import { SETOSA, testApp } from "../../helpers/app.ts";
import { engineOptions } from "../../helpers/engine.ts";
import { MODELS_DIR, realManifest, tinyLmManifest } from "../../helpers/fake-repository.ts";
import { expectProblem, postJson } from "../../helpers/http.ts";
import { makeKeys } from "../../helpers/keys.ts";
import { modelsDirCopy, uploadForm } from "../../helpers/models-dir.ts";

const { app, repository } = testApp({ env: { MODEL_UPLOAD_MAX_BYTES: "4096" } });
beforeEach(() => repository.reset());

const iris = realManifest("iris");
const IRIS = join(MODELS_DIR, "iris");

const put = (path: string, body: RequestInit["body"], headers: Record<string, string> = {}) => app.request(path, { method: "PUT", body, headers });
const post = (path: string, body?: RequestInit["body"], headers: Record<string, string> = {}) => app.request(path, { method: "POST", body, headers });

describe("POST /v1/models", () => {
  test("creates the model: 201, Location, and the model object as GET /v1/models/{name} shows it", async () => {
    const res = await post("/v1/models", uploadForm({ ...iris, name: "flowers", version: "2.0.0" }, IRIS));
    expect(res.status).toBe(201);
    expect(res.headers.get("location")).toBe("/v1/models/flowers");
    const body = await res.json();
    expect(body).toMatchObject({ id: "flowers", object: "model", owned_by: "onnx-serve", task: "tabular-classification", version: "2.0.0", versions: ["2.0.0"], state: "ready" });
    expect(await (await app.request("/v1/models/flowers")).json()).toEqual(body);
    expect(repository.changes).toEqual(["create flowers"]);
  });

  test("a name that exists is 409", async () => {
    const body = await expectProblem(await post("/v1/models", uploadForm(iris, IRIS)), 409, "/v1/models");
    expect(body).toMatchObject({ type: "/problems/conflict", title: "Conflict", detail: "a model named 'iris' already exists; upload new versions of it instead" });
  });

  test("every wrong field is named: missing, unknown, sent twice, sent as text", async () => {
    const form = uploadForm(iris, IRIS, { "model.onnx": undefined, "weights.bin": new Uint8Array([1]) });
    form.append("model.json", new Blob(["{}"]), "model.json");
    const body = await expectProblem(await post("/v1/models", form), 422, "/v1/models");
    expect(body.errors).toEqual([
      { path: "model.json", message: "was sent more than once" },
      { path: "weights.bin", message: "is not a file this route takes; send model.onnx, model.json and (text-generation models) tokenizer.json as files of a multipart/form-data body" },
      { path: "model.onnx", message: "is required" },
    ]);
    const text = new FormData();
    text.append("model.onnx", new Blob([new Uint8Array([8, 1])]));
    text.append("model.json", JSON.stringify(iris));
    expect((await expectProblem(await post("/v1/models", text), 422, "/v1/models")).errors).toEqual([
      { path: "model.json", message: "must be a file, not a text field (curl: -F 'model.json=@model.json')" },
    ]);
    expect(repository.changes).toEqual([]);
  });

  test("a manifest that fails validation, or a text model without its tokenizer, is 422 naming the file", async () => {
    const bad = await expectProblem(await post("/v1/models", uploadForm({ ...iris, name: "x", version: "1.0" }, IRIS)), 422, "/v1/models");
    expect(bad).toMatchObject({ type: "/problems/invalid-input", detail: "model.json: version: versions are MAJOR.MINOR.PATCH, e.g. 1.0.0" });
    const lm = await expectProblem(await post("/v1/models", uploadForm(tinyLmManifest(), IRIS)), 422, "/v1/models");
    expect(lm.detail).toBe("tokenizer.json: a text-generation model needs its tokenizer");
  });

  test("a body that is not multipart is 415; one that does not parse as multipart, 400", async () => {
    const json = await expectProblem(await postJson(app, "/v1/models", iris), 415, "/v1/models");
    expect(json.detail).toStartWith("This route takes model files, not application/json: send model.onnx, model.json");
    await expectProblem(await post("/v1/models", "model.json=x", { "Content-Type": "application/x-www-form-urlencoded" }), 415, "/v1/models");
    const broken = await post("/v1/models", "--b\r\nContent-Disposition: form-data; name=\"model.json\"\r\n\r\n{", { "Content-Type": "multipart/form-data; boundary=zzz" });
    expect((await expectProblem(broken, 400, "/v1/models")).type).toBe("/problems/malformed-multipart");
  });

  test("an upload over MODEL_UPLOAD_MAX_BYTES is 413, before the repository hears of it", async () => {
    const res = await post("/v1/models", uploadForm({ ...iris, name: "big" }, IRIS, { "model.onnx": new Uint8Array(5000) }));
    expect((await expectProblem(res, 413, "/v1/models")).detail).toBe("The request body is larger than 4096 bytes.");
    expect(repository.changes).toEqual([]);
  });

  test("a version that fails to load is 422 with the reason", async () => {
    repository.loadFailure = new EngineError("load_failed", "model 'flowers' could not be loaded: Load model from model.onnx failed: Protobuf parsing failed.");
    const body = await expectProblem(await post("/v1/models", uploadForm({ ...iris, name: "flowers" }, IRIS)), 422, "/v1/models");
    expect(body).toMatchObject({ type: "/problems/load-failed", title: "Model failed to load", detail: "model 'flowers' could not be loaded: Load model from model.onnx failed: Protobuf parsing failed." });
  });
});

describe("PUT /v1/models/{name}", () => {
  test("uploads a new version: 200 with the model object", async () => {
    const res = await put("/v1/models/iris", uploadForm({ ...iris, version: "1.1.0" }, IRIS));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: "iris", version: "1.1.0", versions: ["1.0.0", "1.1.0"], state: "ready" });
    expect(repository.changes).toEqual(["update iris 1.1.0"]);
  });

  test("a manifest naming another model is 422; a version not newer is 409; an unknown model 404", async () => {
    const other = await expectProblem(await put("/v1/models/iris", uploadForm({ ...iris, name: "wine", version: "2.0.0" }, IRIS)), 422, "/v1/models/iris");
    expect(other.detail).toBe("model.json: name is 'wine', but this upload is a version of 'iris'");
    await expectProblem(await put("/v1/models/iris", uploadForm(iris, IRIS)), 409, "/v1/models/iris");
    await expectProblem(await put("/v1/models/nope", uploadForm({ ...iris, name: "nope" }, IRIS)), 404, "/v1/models/nope");
    expect(repository.changes).toEqual([]);
  });

  test("names that could leave the models folder are 422 before anything runs: dots, encoded slashes, unicode, upper case", async () => {
    for (const path of ["/v1/models/..%2Fetc", "/v1/models/a%2Fb", "/v1/models/%2e%2e%2fx", "/v1/models/%C3%A9", "/v1/models/Iris", "/v1/models/.upload-x", `/v1/models/${"a".repeat(64)}`]) {
      // (The problem's instance is the path as routed: URL-decoded, encoded slashes kept.)
      const body = await expectProblem(await put(path, uploadForm(iris, IRIS)), 422, decodeURI(path));
      expect(body.errors![0]!.path).toBe("param.name");
    }
    // A path of dot segments is resolved by URL rules before routing: no model route matches it.
    const dots = await put("/v1/models/%2e%2e", uploadForm(iris, IRIS));
    expect(dots.status).toBe(404);
    expect(repository.changes).toEqual([]);
  });
});

describe("POST /v1/models/{name}/rollback and DELETE /v1/models/{name}", () => {
  test("rollback serves the previous version: 200 with the model object; none kept: 409", async () => {
    await put("/v1/models/iris", uploadForm({ ...iris, version: "1.1.0" }, IRIS));
    const res = await post("/v1/models/iris/rollback");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: "iris", version: "1.0.0", versions: ["1.0.0"] });
    const none = await expectProblem(await post("/v1/models/iris/rollback"), 409, "/v1/models/iris/rollback");
    expect(none.detail).toBe("model 'iris' has no version before 1.0.0 to roll back to (kept: 1.0.0)");
  });

  test("DELETE answers OpenAI's deleted-model object; then the model is unknown (404 in OpenAI's shape on GET)", async () => {
    const res = await app.request("/v1/models/wine", { method: "DELETE" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: "wine", object: "model", deleted: true });
    const gone = await app.request("/v1/models/wine");
    expect(gone.status).toBe(404);
    expect(await gone.json()).toMatchObject({ error: { code: "model_not_found" } });
    await expectProblem(await app.request("/v1/models/wine", { method: "DELETE" }), 404, "/v1/models/wine");
    expect(repository.changes).toEqual(["remove wine"]);
  });
});

describe("GET /v1/models and /v1/models/{model}", () => {
  test("show every model in any state, a failed one with its reason", async () => {
    repository.setState("wine", "failed", "wine/model.onnx: Protobuf parsing failed");
    const list = (await (await app.request("/v1/models")).json()) as { data: Record<string, unknown>[] };
    expect(list.data.map((m) => [m.id, m.state])).toEqual([
      ["iris", "ready"],
      ["wine", "failed"],
    ]);
    expect(await (await app.request("/v1/models/wine")).json()).toMatchObject({ id: "wine", version: "1.0.0", task: "tabular-classification", state: "failed", error: "wine/model.onnx: Protobuf parsing failed" });
  });
});

describe("POST /v1/models/{name}/reload", () => {
  test("reloads the model and answers its model object, as GET /v1/models/{name} shows it", async () => {
    repository.setState("wine", "failed", "bad file");
    const res = await app.request("/v1/models/wine/reload", { method: "POST" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    const body = await res.json();
    expect(body).toMatchObject({ id: "wine", object: "model", task: "tabular-classification", version: "1.0.0", state: "ready" });
    expect(body).not.toHaveProperty("error");
    expect(await (await app.request("/v1/models/wine")).json()).toEqual(body);
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

describe("the admin scope", () => {
  const { store, secret } = makeKeys([
    { name: "predictor", scopes: ["predict"] },
    { name: "operator", scopes: ["admin"] },
  ]);
  const keyed = testApp({ keys: store });

  test("every change needs a key with 'admin': none is 401, a predict key 403; the OpenAI GETs stay public", async () => {
    const changes: [string, string, () => RequestInit["body"] | undefined][] = [
      ["POST", "/v1/models", () => uploadForm({ ...iris, name: "flowers" }, IRIS)],
      ["PUT", "/v1/models/iris", () => uploadForm({ ...iris, version: "1.1.0" }, IRIS)],
      ["POST", "/v1/models/iris/rollback", () => undefined],
      ["DELETE", "/v1/models/wine", () => undefined],
    ];
    for (const [method, path, body] of changes) {
      await expectProblem(await keyed.app.request(path, { method, body: body() }), 401, path);
      await expectProblem(await keyed.app.request(path, { method, body: body(), headers: { "X-API-Key": secret.predictor } }), 403, path);
    }
    expect(keyed.repository.changes).toEqual([]);
    for (const [method, path, body] of changes) {
      const res = await keyed.app.request(path, { method, body: body(), headers: { Authorization: `Bearer ${secret.operator}` } });
      expect({ method, path, status: res.status }).toEqual({ method, path, status: method === "POST" && path === "/v1/models" ? 201 : 200 });
    }
    expect((await keyed.app.request("/v1/models")).status).toBe(200);
    expect((await keyed.app.request("/v1/models/iris")).status).toBe(200);
  });
});

describe("over a real repository: validation and /doc follow the new version's manifest", () => {
  const root = modelsDirCopy(["iris"]);
  const real = new ModelRepository(root, engineOptions());
  const { app: realApp } = testApp({ catalog: real });
  afterAll(() => real.close());

  test("a version with other features validates against them and /doc shows them; a rollback brings the old ones back", async () => {
    await real.loadAll();
    const doc = async () => (await (await realApp.request("/doc")).json()) as Record<string, any>;
    const docBefore = await doc();
    const v1Before = docBefore.paths["/v1/predict"].post.requestBody.content["application/json"].schema;
    expect(JSON.stringify(v1Before)).not.toContain("stem_length");
    expect((await postJson(realApp, "/v1/models/iris/predict", { features: SETOSA })).status).toBe(200);

    // The same graph (four inputs): the new version renames the fourth feature and bounds it more tightly.
    const features = iris.features.map((f, i) => (i === 3 ? { ...f, name: "stem_length", exclusiveMaximum: 2 } : f));
    const res = await realApp.request("/v1/models/iris", { method: "PUT", body: uploadForm({ ...iris, version: "1.1.0", features }, IRIS) });
    expect(res.status).toBe(200);
    const refused = await expectProblem(await postJson(realApp, "/v1/models/iris/predict", { features: [5.1, 3.5, 1.4, 2.5] }), 422, "/v1/models/iris/predict");
    expect(refused.errors).toEqual([{ path: "features.3", message: expect.stringContaining("stem_length") }]);
    expect(await (await postJson(realApp, "/v1/models/iris/predict", { features: SETOSA })).json()).toMatchObject({ model: "iris", version: "1.1.0", label: "setosa" });
    const v2 = await postJson(realApp, "/v2/predict", { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, stem_length: 0.2 });
    expect(await v2.json()).toMatchObject({ version: "1.1.0", label: "setosa" });

    const docAfter = await doc();
    const named = docAfter.paths["/v2/predict"].post.requestBody.content["application/json"].schema;
    const resolved = named.$ref ? docAfter.components.schemas[named.$ref.split("/").pop()] : named;
    expect(Object.keys(resolved.properties)).toEqual(["sepal_length", "sepal_width", "petal_length", "stem_length"]);

    // Rolled back: the old features again, everywhere.
    expect((await realApp.request("/v1/models/iris/rollback", { method: "POST" })).status).toBe(200);
    expect((await postJson(realApp, "/v1/models/iris/predict", { features: [5.1, 3.5, 1.4, 2.5] })).status).toBe(200);
    expect(JSON.stringify((await doc()).paths["/v2/predict"])).not.toContain("stem_length");
    expect(readdirSync(join(root, "iris")).sort()).toEqual(["1.0.0", "CURRENT"]);
  });
});
