import { beforeEach, describe, expect, test } from "bun:test";
import type { TabularManifest } from "../../../src/engine/registry/manifest.ts";
import { realManifest } from "../../helpers/fake-repository.ts";
import { testApp } from "../../helpers/app.ts";
import { expectProblem, postJson } from "../../helpers/http.ts";

// The fake model's class is the index of the largest feature, modulo the label count; it gets 0.75.
const SETOSA_ROW = [5.1, 3.5, 1.4, 0.2];
const VERSICOLOR_ROW = [1, 5, 2, 1];
const VIRGINICA_ROW = [1, 2, 6, 1];
const IRIS_FEATURES = "sepal_length, sepal_width, petal_length, petal_width";
const named = (row: number[]) => ({ sepal_length: row[0], sepal_width: row[1], petal_length: row[2], petal_width: row[3] });

const V1_SETOSA = { model: "iris", version: "1.0.0", class: 0, label: "setosa", probabilities: [0.75, 0.125, 0.125] };
const V1_VERSICOLOR = { model: "iris", version: "1.0.0", class: 1, label: "versicolor", probabilities: [0.125, 0.75, 0.125] };
const V1_VIRGINICA = { model: "iris", version: "1.0.0", class: 2, label: "virginica", probabilities: [0.125, 0.125, 0.75] };
const V2_VERSICOLOR = {
  model: "iris",
  version: "1.0.0",
  label: "versicolor",
  confidence: 0.75,
  probabilities: { setosa: 0.125, versicolor: 0.75, virginica: 0.125 },
};

// One app for the file (building one costs tens of milliseconds); the fake is reset before each test.
const { app, repository } = testApp();
beforeEach(() => repository.reset());

async function expectJson(res: Response, body: unknown) {
  expect({ status: res.status, body: await res.clone().text() }).toEqual({ status: 200, body: expect.any(String) });
  expect(res.headers.get("content-type")).toBe("application/json");
  expect(await res.json()).toEqual(body);
}

describe("POST /v1/predict", () => {
  test("classifies one row with the default model", async () => {
    await expectJson(await postJson(app, "/v1/predict", { features: VERSICOLOR_ROW }), V1_VERSICOLOR);
    await expectJson(await postJson(app, "/v1/predict", { features: SETOSA_ROW }), V1_SETOSA);
    expect(repository.model("iris").calls).toEqual([[VERSICOLOR_ROW], [SETOSA_ROW]]);
    expect(repository.model("wine").calls).toEqual([]);
  });

  test("DEFAULT_MODEL picks the model behind it", async () => {
    const { app } = testApp({ env: { DEFAULT_MODEL: "wine" } });
    const row = [14.1, 2.16, 2.3, 18, 105, 2.95, 3.32, 0.22, 2.38, 5.75, 1.25, 3.17, 1510];
    await expectJson(await postJson(app, "/v1/predict", { features: row }), {
      model: "wine",
      version: "1.0.0",
      class: 0,
      label: "class_0",
      probabilities: [0.75, 0.125, 0.125],
    });
  });

  test("accepts a charset parameter on the Content-Type", async () => {
    const res = await postJson(app, "/v1/predict", { features: SETOSA_ROW }, { "Content-Type": "application/json; charset=utf-8" });
    await expectJson(res, V1_SETOSA);
  });

  test("the wrong number of features is a 422 naming 'features' and the expected shape", async () => {
    const body = await expectProblem(await postJson(app, "/v1/predict", { features: [5.1, 3.5, 1.4] }), 422, "/v1/predict");
    expect(body).toEqual({
      type: "/problems/validation-error",
      title: "Validation failed",
      status: 422,
      detail: `features: expected an array of exactly 4 numbers (${IRIS_FEATURES}), got 3`,
      instance: "/v1/predict",
      errors: [{ path: "features", message: `expected an array of exactly 4 numbers (${IRIS_FEATURES}), got 3` }],
    });
    expect(repository.model("iris").calls).toEqual([]);
  });

  test("missing features is a 422", async () => {
    const body = await expectProblem(await postJson(app, "/v1/predict", {}), 422, "/v1/predict");
    expect(body.errors).toEqual([{ path: "features", message: `required: an array of exactly 4 numbers (${IRIS_FEATURES})` }]);
  });

  test("values outside the manifest's bounds are a 422 naming the feature, the bound and the unit", async () => {
    const body = await expectProblem(await postJson(app, "/v1/predict", { features: [0, 3.5, 1.4, 30] }), 422, "/v1/predict");
    expect(body.errors).toEqual([
      { path: "features.0", message: "sepal_length must be greater than 0 cm" },
      { path: "features.3", message: "petal_width must be less than 30 cm" },
    ]);
  });

  test.each([
    ["a string", "5.1", "a string"],
    ["null", null, "null"],
    ["an array", [5.1], "an array"],
  ])("%s where a number is expected is a 422 naming the field", async (_, value, described) => {
    const body = await expectProblem(await postJson(app, "/v1/predict", { features: [5.1, value, 1.4, 0.2] }), 422, "/v1/predict");
    expect(body.errors).toEqual([{ path: "features.1", message: `sepal_width must be a finite number, got ${described}` }]);
  });
});

describe("POST /v1/predict/batch", () => {
  test("returns one prediction per instance, in the order sent, from one predict() call", async () => {
    const instances = [VIRGINICA_ROW, SETOSA_ROW, VERSICOLOR_ROW, VIRGINICA_ROW];
    const strip = ({ model: _, version: __, ...p }: typeof V1_SETOSA) => p;
    await expectJson(await postJson(app, "/v1/predict/batch", { instances }), {
      model: "iris",
      version: "1.0.0",
      predictions: [strip(V1_VIRGINICA), strip(V1_SETOSA), strip(V1_VERSICOLOR), strip(V1_VIRGINICA)],
    });
    expect(repository.model("iris").calls).toEqual([instances]);
  });

  test("MAX_BATCH_INSTANCES rows are accepted; one more is a 422", async () => {
    const { app } = testApp({ env: { MAX_BATCH_INSTANCES: "3" } });
    const ok = await postJson(app, "/v1/predict/batch", { instances: [SETOSA_ROW, SETOSA_ROW, SETOSA_ROW] });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { predictions: unknown[] }).predictions).toHaveLength(3);

    const res = await postJson(app, "/v1/predict/batch", { instances: [SETOSA_ROW, SETOSA_ROW, SETOSA_ROW, SETOSA_ROW] });
    const body = await expectProblem(res, 422, "/v1/predict/batch");
    expect(body.errors).toEqual([{ path: "instances", message: "may hold at most 3 rows" }]);
  });

  test("no instances is a 422", async () => {
    const body = await expectProblem(await postJson(app, "/v1/predict/batch", { instances: [] }), 422, "/v1/predict/batch");
    expect(body.errors).toEqual([{ path: "instances", message: "must hold at least one row" }]);
  });

  test("a bad value in one row is a 422 naming the row and the feature", async () => {
    const body = await expectProblem(
      await postJson(app, "/v1/predict/batch", { instances: [SETOSA_ROW, [5.1, 3.5, 31, 0.2]] }),
      422,
      "/v1/predict/batch",
    );
    expect(body.errors).toEqual([{ path: "instances.1.2", message: "petal_length must be less than 30 cm" }]);
    expect(repository.model("iris").calls).toEqual([]);
  });
});

describe("POST /v1/models/{name}/predict", () => {
  const WINE_FEATURES =
    "alcohol, malic_acid, ash, alcalinity_of_ash, magnesium, total_phenols, flavanoids, nonflavanoid_phenols, proanthocyanins, color_intensity, hue, od280_od315_of_diluted_wines, proline";

  test("classifies with the named model", async () => {
    // Magnesium (index 4) is the largest: class 4 mod 3 = 1.
    const row = [13, 2, 2.3, 18, 105, 2.95, 3.32, 0.22, 2.38, 5.75, 1.25, 3.17, 100];
    await expectJson(await postJson(app, "/v1/models/wine/predict", { features: row }), {
      model: "wine",
      version: "1.0.0",
      class: 1,
      label: "class_1",
      probabilities: [0.125, 0.75, 0.125],
    });
    await expectJson(await postJson(app, "/v1/models/iris/predict", { features: VIRGINICA_ROW }), V1_VIRGINICA);
    expect(repository.model("wine").calls).toEqual([[row]]);
  });

  test("an unknown model is a 404 problem", async () => {
    const body = await expectProblem(await postJson(app, "/v1/models/nope/predict", { features: SETOSA_ROW }), 404, "/v1/models/nope/predict");
    expect(body).toEqual({
      type: "/problems/model-not-found",
      title: "Model not found",
      status: 404,
      detail: "no model named 'nope'; available: iris, wine",
      instance: "/v1/models/nope/predict",
    });
  });

  test("the wrong feature count for that model is a 422 naming 'features'", async () => {
    const body = await expectProblem(await postJson(app, "/v1/models/wine/predict", { features: SETOSA_ROW }), 422, "/v1/models/wine/predict");
    expect(body.errors).toEqual([{ path: "features", message: `expected an array of exactly 13 numbers (${WINE_FEATURES}), got 4` }]);
    expect(body.detail).toBe(`features: expected an array of exactly 13 numbers (${WINE_FEATURES}), got 4`);
    expect(repository.model("wine").calls).toEqual([]);
  });

  test("that model's bounds apply", async () => {
    const row = [13, 2, 2.3, 18, 105, 2.95, 3.32, 0.22, 2.38, 5.75, 1.25, 3.17, 20000];
    const body = await expectProblem(await postJson(app, "/v1/models/wine/predict", { features: row }), 422, "/v1/models/wine/predict");
    expect(body.errors).toEqual([{ path: "features.12", message: "proline must be less than 20000 mg/l" }]);
  });

  test("features that are not an array of numbers is a 422", async () => {
    const body = await expectProblem(await postJson(app, "/v1/models/iris/predict", { features: "5.1,3.5" }), 422, "/v1/models/iris/predict");
    expect(body.errors?.map((e) => e.path)).toEqual(["features"]);
  });
});

describe("POST /v2/predict", () => {
  test("takes named features and answers probabilities by label", async () => {
    // Keys in any order; the row goes to the model in manifest order.
    const body = { petal_width: 1, petal_length: 2, sepal_width: 5, sepal_length: 1 };
    await expectJson(await postJson(app, "/v2/predict", body), V2_VERSICOLOR);
    expect(repository.model("iris").calls).toEqual([[VERSICOLOR_ROW]]);
  });

  test("an unknown feature name is a 422 listing the expected names", async () => {
    const res = await postJson(app, "/v2/predict", { ...named(SETOSA_ROW), petal_colour: 3 });
    const body = await expectProblem(res, 422, "/v2/predict");
    expect(body.errors).toEqual([{ path: "(body)", message: `unknown feature 'petal_colour'; expected ${IRIS_FEATURES}` }]);
  });

  test("an out-of-range value is a 422 naming the field and the bound", async () => {
    const body = await expectProblem(await postJson(app, "/v2/predict", { ...named(SETOSA_ROW), sepal_length: 30, petal_width: -1 }), 422, "/v2/predict");
    expect(body.errors).toEqual([
      { path: "sepal_length", message: "sepal_length must be less than 30 cm" },
      { path: "petal_width", message: "petal_width must be greater than 0 cm" },
    ]);
    expect(body.detail).toBe("sepal_length: sepal_length must be less than 30 cm; petal_width: petal_width must be greater than 0 cm");
  });

  test("a missing feature is a 422 naming it", async () => {
    const { petal_width: _, ...three } = named(SETOSA_ROW);
    const body = await expectProblem(await postJson(app, "/v2/predict", three), 422, "/v2/predict");
    expect(body.errors).toEqual([{ path: "petal_width", message: "petal_width is required" }]);
  });

  test("the v1 body is not a v2 body", async () => {
    const body = await expectProblem(await postJson(app, "/v2/predict", { features: SETOSA_ROW }), 422, "/v2/predict");
    expect(body.errors?.map((e) => e.path)).toContain("(body)");
  });
});

describe("POST /predict, versioned by API-Version", () => {
  test("without API-Version it is /v1/predict", async () => {
    await expectJson(await postJson(app, "/predict", { features: VERSICOLOR_ROW }), V1_VERSICOLOR);
  });

  test("API-Version: 1 is /v1/predict", async () => {
    await expectJson(await postJson(app, "/predict", { features: VERSICOLOR_ROW }, { "API-Version": "1" }), V1_VERSICOLOR);
  });

  test("API-Version: 2 is /v2/predict (surrounding spaces ignored)", async () => {
    await expectJson(await postJson(app, "/predict", named(VERSICOLOR_ROW), { "API-Version": "2" }), V2_VERSICOLOR);
    await expectJson(await postJson(app, "/predict", named(VERSICOLOR_ROW), { "API-Version": " 2 " }), V2_VERSICOLOR);
  });

  test("API-Version: 2 validates as v2", async () => {
    const res = await postJson(app, "/predict", { features: SETOSA_ROW }, { "API-Version": "2" });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { errors: { path: string }[] }).errors.map((e) => e.path)).toContain("(body)");
  });

  test.each(["9", "v2", "", "1.0"])("API-Version: %j is a 400 problem", async (version) => {
    const body = await expectProblem(await postJson(app, "/predict", { features: SETOSA_ROW }, { "API-Version": version }), 400, "/predict");
    expect(body).toEqual({
      type: "/problems/unsupported-api-version",
      title: "Unsupported API version",
      status: 400,
      detail: `API-Version must be one of 1, 2; got '${version}'.`,
      instance: "/predict",
    });
    expect(repository.model("iris").calls).toEqual([]);
  });

  test("problems from POST /predict name /predict as the instance", async () => {
    await expectProblem(await postJson(app, "/predict", { features: [1, 2, 3] }), 422, "/predict");
    await expectProblem(await postJson(app, "/predict", {}, { "API-Version": "2" }), 422, "/predict");
  });
});

describe("the default model's manifest is live: a new version changes what every route checks", () => {
  const iris = realManifest("iris");
  // Version 2 renames a feature and tightens a bound; its labels are new too.
  const v2: TabularManifest = {
    ...iris,
    version: "2.0.0",
    features: iris.features.map((f) => (f.name === "sepal_length" ? { ...f, name: "sepal_len", maximum: 8 } : f)),
    labels: ["a", "b", "c"],
  };
  const oldNames = named(VERSICOLOR_ROW);
  const { sepal_length, ...rest } = oldNames;
  const newNames = { sepal_len: sepal_length, ...rest };

  test("before: the old names and bounds", async () => {
    expect((await postJson(app, "/v2/predict", oldNames)).status).toBe(200);
    expect((await postJson(app, "/v1/predict", { features: [9, 3, 2, 1] })).status).toBe(200);
  });

  test("after a new version: old names are refused everywhere, new ones served; the new bound holds on every route", async () => {
    repository.serve(v2);
    for (const path of ["/v2/predict", "/predict"]) {
      const headers: Record<string, string> = path === "/predict" ? { "API-Version": "2" } : {};
      const refused = await expectProblem(await postJson(app, path, oldNames, headers), 422, path);
      expect(refused.errors).toEqual([
        { path: "sepal_len", message: "sepal_len is required" },
        { path: "(body)", message: "unknown feature 'sepal_length'; expected sepal_len, sepal_width, petal_length, petal_width" },
      ]);
      const served = (await (await postJson(app, path, newNames, headers)).json()) as { version: string; label: string };
      expect(served).toMatchObject({ version: "2.0.0", label: "b" });
    }
    for (const path of ["/v1/predict", "/predict", "/v1/models/iris/predict"]) {
      const body = await expectProblem(await postJson(app, path, { features: [9, 3, 2, 1] }), 422, path);
      expect(body.errors).toEqual([{ path: "features.0", message: "sepal_len must be at most 8 cm" }]);
    }
    const batch = await expectProblem(await postJson(app, "/v1/predict/batch", { instances: [[5, 3, 2, 1], [9, 3, 2, 1]] }), 422, "/v1/predict/batch");
    expect(batch.errors).toEqual([{ path: "instances.1.0", message: "sepal_len must be at most 8 cm" }]);
    expect(((await (await postJson(app, "/v1/predict", { features: [5, 3, 2, 1] })).json()) as { label: string }).label).toBe("a");
  });

  test("/doc follows: the bodies of the default model's routes show the new version's features", async () => {
    const schemaOf = async (path: string) => {
      const doc = (await (await app.request("/doc")).json()) as { paths: Record<string, { post: { requestBody: { content: Record<string, { schema: unknown }> } } }> };
      return JSON.stringify(doc.paths[path]!.post.requestBody.content["application/json"]!.schema);
    };
    expect(await schemaOf("/v2/predict")).toContain('"sepal_length"');
    repository.serve(v2);
    const after = await schemaOf("/v2/predict");
    expect(after).toContain('"sepal_len"');
    expect(after).not.toContain('"sepal_length"');
    expect(await schemaOf("/v1/predict")).toContain("sepal_len, sepal_width");
  });

  test("a default model that failed to load answers 503 on its routes, never a 200", async () => {
    repository.setState("iris", "failed", "iris/model.onnx: protobuf parsing failed");
    for (const [path, body] of [["/v1/predict", { features: SETOSA_ROW }], ["/v2/predict", named(SETOSA_ROW)], ["/predict", { features: SETOSA_ROW }]] as const) {
      const problem = await expectProblem(await postJson(app, path, body), 503, path);
      expect(problem.detail).toBe("model 'iris' failed to load: iris/model.onnx: protobuf parsing failed");
    }
  });
});
