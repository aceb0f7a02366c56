/**
 * The Open Inference Protocol (KServe v2) routes at the edge: over the real engine with real models (iris,
 * the rgb32 image fixture, the typed fixture with int64, bool and string outputs, and a text model it does not
 * serve), and over a fake catalog for states and for the model of the specification's own example.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { symlinkSync } from "node:fs";
import { join } from "node:path";
import { EngineError } from "../../../src/engine/errors.ts";
import type { Feeds } from "../../../src/engine/execution/session-pool.ts";
import type { ModelManifest, ModelTask } from "../../../src/engine/registry/manifest.ts";
import { ModelRepository, type ServedModel } from "../../../src/engine/registry/repository.ts";
import type { RowResult } from "../../../src/engine/scheduling/row-batcher.ts";
import pkg from "../../../package.json" with { type: "json" };
import { testApp } from "../../helpers/app.ts";
import { engineOptions } from "../../helpers/engine.ts";
import { FakeRepository, MODELS_DIR, realManifest } from "../../helpers/fake-repository.ts";
import { expectProblem, postJson } from "../../helpers/http.ts";
import { makeKeys } from "../../helpers/keys.ts";
import { tempDir } from "../../helpers/models-dir.ts";

const FIXTURES = join(import.meta.dir, "..", "..", "fixtures");
const SETOSA = [5.1, 3.5, 1.4, 0.2];
const VIRGINICA = [6.7, 3.0, 5.2, 2.3];

/** Asserts the protocol's error: the status, JSON, a body of exactly {"error": "<message>"}; returns the message. */
async function expectError(res: Response, status: number): Promise<string> {
  const text = await res.text();
  expect({ status: res.status, text }).toEqual({ status, text: expect.any(String) });
  expect(res.headers.get("content-type")).toStartWith("application/json");
  const body = JSON.parse(text) as Record<string, unknown>;
  expect(Object.keys(body)).toEqual(["error"]);
  expect(typeof body.error).toBe("string");
  return body.error as string;
}

type InferenceResponse = { model_name: string; model_version: string; id?: string; outputs: { name: string; shape: number[]; datatype: string; data: unknown[] }[] };

/** A solid picture of `rgb` as rgb32 takes it: NHWC 32x32x3, each channel (pixel - ImageNet mean) / ImageNet std. */
function solid(rgb: [number, number, number]): number[] {
  const mean = [123.675, 116.28, 103.53];
  const std = [58.395, 57.12, 57.375];
  const pixel = rgb.map((v, c) => (v - mean[c]!) / std[c]!);
  return Array.from({ length: 32 * 32 }, () => pixel).flat();
}

describe("over the real engine", () => {
  const dir = tempDir("onnx-serve-kserve-");
  symlinkSync(join(MODELS_DIR, "iris"), join(dir, "iris"), "dir");
  symlinkSync(join(FIXTURES, "models", "rgb32"), join(dir, "rgb32"), "dir");
  symlinkSync(join(FIXTURES, "models", "typed"), join(dir, "typed"), "dir");
  symlinkSync(join(FIXTURES, "tiny-lm"), join(dir, "tiny-lm"), "dir");
  const repository = new ModelRepository(dir, engineOptions());
  const { app } = testApp({ catalog: repository });
  const infer = (model: string, body: unknown) => postJson(app, `/v2/models/${model}/infer`, body);

  beforeAll(() => repository.loadAll());
  afterAll(() => repository.close());

  test("GET /v2 is the server's metadata", async () => {
    const res = await app.request("/v2");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: "onnx-serve", version: pkg.version, extensions: [] });
  });

  test("GET /v2/health/live and /v2/health/ready", async () => {
    expect(await (await app.request("/v2/health/live")).json()).toEqual({ live: true });
    const ready = await app.request("/v2/health/ready");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });
  });

  describe("model metadata", () => {
    test("a tabular model: the graph's tensors, FP32, -1 for the batch", async () => {
      const res = await app.request("/v2/models/iris");
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        name: "iris",
        versions: ["1.0.0"],
        platform: "onnx_onnxv1",
        inputs: [{ name: "input", datatype: "FP32", shape: [-1, 4] }],
        outputs: [{ name: "probabilities", datatype: "FP32", shape: [-1, 3] }],
      });
    });

    test("an image model (NHWC) and outputs of every other type", async () => {
      expect(await (await app.request("/v2/models/rgb32")).json()).toMatchObject({
        inputs: [{ name: "image", datatype: "FP32", shape: [-1, 32, 32, 3] }],
        outputs: [{ name: "logits", datatype: "FP32", shape: [-1, 4] }],
      });
      expect(((await (await app.request("/v2/models/typed")).json()) as { outputs: unknown }).outputs).toEqual([
        { name: "probabilities", datatype: "FP32", shape: [-1, 3] },
        { name: "class", datatype: "INT64", shape: [-1] },
        { name: "confident", datatype: "BOOL", shape: [-1] },
        { name: "label", datatype: "BYTES", shape: [-1] },
      ]);
    });

    test("at the served version, the same; at another, 404 naming the served one", async () => {
      expect(await (await app.request("/v2/models/iris/versions/1.0.0")).json()).toEqual(await (await app.request("/v2/models/iris")).json());
      expect(await expectError(await app.request("/v2/models/iris/versions/2.0.0"), 404)).toBe("model 'iris' has no version '2.0.0'; the served version is 1.0.0");
    });

    test("an unknown model is 404 listing the models this protocol serves (not the text model)", async () => {
      expect(await expectError(await app.request("/v2/models/nope"), 404)).toBe("no model named 'nope'; this protocol serves: iris, rgb32, typed");
    });

    test("a text-generation model is 404 saying why", async () => {
      const message = "model 'tiny-lm' is a text-generation model, which the inference protocol does not serve; use /v1/completions or /v1/generate";
      expect(await expectError(await app.request("/v2/models/tiny-lm"), 404)).toBe(message);
      expect(await expectError(await app.request("/v2/models/tiny-lm/ready"), 404)).toBe(message);
      expect(await expectError(await infer("tiny-lm", { inputs: [{ name: "input_ids", shape: [1, 1], datatype: "INT64", data: [1] }] }), 404)).toBe(message);
    });
  });

  test("model ready: 200 with name and ready; another version is 404", async () => {
    const res = await app.request("/v2/models/rgb32/ready");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: "rgb32", ready: true });
    expect(await (await app.request("/v2/models/rgb32/versions/1.0.0/ready")).json()).toEqual({ name: "rgb32", ready: true });
    expect(await expectError(await app.request("/v2/models/rgb32/versions/0.9.0/ready"), 404)).toBe("model 'rgb32' has no version '0.9.0'; the served version is 1.0.0");
  });

  describe("inference", () => {
    test("iris: the probabilities /v1/models/iris/predict gives, rows in order, id echoed", async () => {
      const res = await infer("iris", { id: "req-1", inputs: [{ name: "input", shape: [2, 4], datatype: "FP32", data: [...SETOSA, ...VIRGINICA] }] });
      expect(res.status).toBe(200);
      const body = (await res.json()) as InferenceResponse;
      const predicted = await Promise.all(
        [SETOSA, VIRGINICA].map(async (features) => ((await (await postJson(app, "/v1/models/iris/predict", { features })).json()) as { probabilities: number[] }).probabilities),
      );
      expect(body).toEqual({ model_name: "iris", model_version: "1.0.0", id: "req-1", outputs: [{ name: "probabilities", shape: [2, 3], datatype: "FP32", data: predicted.flat() }] });
    });

    test("nested data gives what flat data gives; without an id, none comes back", async () => {
      const flat = (await (await infer("iris", { inputs: [{ name: "input", shape: [2, 4], datatype: "FP32", data: [...SETOSA, ...VIRGINICA] }] })).json()) as InferenceResponse;
      const nested = (await (await infer("iris", { inputs: [{ name: "input", shape: [2, 4], datatype: "FP32", data: [SETOSA, VIRGINICA] }] })).json()) as InferenceResponse;
      expect(nested).toEqual(flat);
      expect("id" in nested).toBe(false);
    });

    test("parameters, on the request, its inputs and its outputs, are accepted", async () => {
      const res = await infer("iris", {
        parameters: { priority: 1, trace: true, note: "x" },
        inputs: [{ name: "input", shape: [1, 4], datatype: "FP32", data: SETOSA, parameters: { binary_data: false } }],
        outputs: [{ name: "probabilities", parameters: { binary_data: false } }],
      });
      expect(res.status).toBe(200);
    });

    test("an image model takes its input tensor straight: solid red and blue pictures, nested [batch, 32, 32, 3]", async () => {
      const picture = (rgb: [number, number, number]) => Array.from({ length: 32 }, (_, y) => Array.from({ length: 32 }, (_, x) => solid(rgb).slice((y * 32 + x) * 3, (y * 32 + x) * 3 + 3)));
      const res = await infer("rgb32", { inputs: [{ name: "image", shape: [2, 32, 32, 3], datatype: "FP32", data: [picture([255, 0, 0]), picture([0, 0, 255])] }] });
      const body = (await res.json()) as InferenceResponse;
      const logits = body.outputs[0]!.data as number[];
      expect(body.outputs[0]!.shape).toEqual([2, 4]);
      const argmax = (row: number[]) => row.indexOf(Math.max(...row));
      expect([argmax(logits.slice(0, 4)), argmax(logits.slice(4, 8))]).toEqual([0, 2]); // red, blue
    });

    test("INT64, BOOL and BYTES outputs come back as numbers, true/false and strings; `outputs` picks them, in its order", async () => {
      const rows = [SETOSA, [6.0, 3.0, 4.5, 1.5], [6.7, 3.0, 6.0, 2.3]];
      const res = await infer("typed", { inputs: [{ name: "input", shape: [3, 4], datatype: "FP32", data: rows }], outputs: [{ name: "label" }, { name: "class" }, { name: "confident" }] });
      expect(await res.json()).toEqual({
        model_name: "typed",
        model_version: "1.0.0",
        outputs: [
          { name: "label", shape: [3], datatype: "BYTES", data: ["setosa", "versicolor", "virginica"] },
          { name: "class", shape: [3], datatype: "INT64", data: [0, 1, 2] },
          { name: "confident", shape: [3], datatype: "BOOL", data: [true, false, true] },
        ],
      });
    });

    test("without `outputs`, every output in the graph's order", async () => {
      const body = (await (await infer("typed", { inputs: [{ name: "input", shape: [1, 4], datatype: "FP32", data: SETOSA }] })).json()) as InferenceResponse;
      expect(body.outputs.map((o) => [o.name, o.datatype])).toEqual([
        ["probabilities", "FP32"],
        ["class", "INT64"],
        ["confident", "BOOL"],
        ["label", "BYTES"],
      ]);
    });

    test("at the served version it infers; at another, 404 naming the served one", async () => {
      const body = { inputs: [{ name: "input", shape: [1, 4], datatype: "FP32", data: SETOSA }] };
      expect((await postJson(app, "/v2/models/iris/versions/1.0.0/infer", body)).status).toBe(200);
      expect(await expectError(await postJson(app, "/v2/models/iris/versions/1/infer", body), 404)).toBe("model 'iris' has no version '1'; the served version is 1.0.0");
    });

    test("requests join the model's micro-batches like any other", async () => {
      const one = (features: number[]) => infer("iris", { inputs: [{ name: "input", shape: [1, 4], datatype: "FP32", data: features }] });
      const answers = await Promise.all([one(SETOSA), one(VIRGINICA), postJson(app, "/v1/models/iris/predict", { features: SETOSA })]);
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
      const [a, b] = (await Promise.all(answers.slice(0, 2).map((r) => r.json()))) as InferenceResponse[];
      expect((a!.outputs[0]!.data as number[]).indexOf(Math.max(...(a!.outputs[0]!.data as number[])))).toBe(0);
      expect((b!.outputs[0]!.data as number[]).indexOf(Math.max(...(b!.outputs[0]!.data as number[])))).toBe(2);
    });

    test("Server-Timing carries the engine's queue and inference time", async () => {
      const res = await infer("iris", { inputs: [{ name: "input", shape: [1, 4], datatype: "FP32", data: SETOSA }] });
      expect(res.headers.get("server-timing")).toMatch(/queue;dur=[\d.]+, inference;dur=[\d.]+/);
    });
  });

  describe("bad requests are 400 {\"error\"} naming the tensor and what is wrong", () => {
    const iris = (tensor: Record<string, unknown>, extra: Record<string, unknown> = {}) => infer("iris", { inputs: [{ name: "input", shape: [1, 4], datatype: "FP32", data: SETOSA, ...tensor }], ...extra });

    test.each([
      ["another datatype", { datatype: "FP64" }, "input 'input' must be FP32, not FP64"],
      ["FP16", { datatype: "FP16" }, "input 'input': FP16 has no JSON representation (the protocol leaves it out), so this server cannot take it; the model's input is FP32"],
      ["too few values for the shape", { shape: [2, 4] }, "input 'input' has shape [2, 4], which holds 8 values, but 4 were given"],
      ["nesting that does not match the shape", { shape: [2, 2], data: [[5.1, 3.5, 1.4], [0.2]] }, "input 'input': data[0] holds 3 items, but dimension 1 of shape [2, 2] is 2"],
      ["a value that is not a number", { data: [5.1, 3.5, "1.4", 0.2] }, `input 'input': data[2] is "1.4", not a number (FP32)`],
      ["another rank (the graph refuses it)", { shape: [4] }, "input 'input' has 2 dimensions [-1, 4], not 1 [4]"],
      ["another width (the graph refuses it)", { shape: [1, 5], data: [...SETOSA, 1] }, "input 'input' has shape [-1, 4]; dimension 1 is 5, not 4"],
      ["an empty batch", { shape: [0, 4], data: [] }, "the batch is empty: the first dimension of every input must be at least 1"],
      ["an unknown input", { name: "features" }, "the model has no input 'features'; its inputs are 'input'"],
    ])("%s", async (_, tensor, message) => {
      expect(await expectError(await iris(tensor), 400)).toBe(message);
    });

    test("the same input twice", async () => {
      const t = { name: "input", shape: [1, 4], datatype: "FP32", data: SETOSA };
      expect(await expectError(await infer("iris", { inputs: [t, t] }), 400)).toBe("input 'input' is given twice");
    });

    test("unknown outputs, named, with the model's", async () => {
      expect(await expectError(await iris({}, { outputs: [{ name: "class" }, { name: "probabilities" }, { name: "label" }] }), 400)).toBe(
        "the model has no output 'class', 'label'; its outputs are 'probabilities'",
      );
    });

    test("an envelope that is not the protocol's: the field, in words", async () => {
      expect(await expectError(await infer("iris", { inputs: [{ name: "input", shape: [1, 4], datatype: "FP32" }] }), 400)).toBe("inputs.0.data: is required");
      expect(await expectError(await iris({ shape: [1, -4] }), 400)).toBe("inputs.0.shape.1: must be at least 0");
      expect(await expectError(await iris({ data: 5.1 }), 400)).toBe("inputs.0.data: must be an array");
      expect(await expectError(await infer("iris", { inputs: [] }), 400)).toBe("inputs: must not be empty");
      expect(await expectError(await iris({}, { id: 42 }), 400)).toBe("id: must be a string, got 42");
    });

    test("malformed JSON", async () => {
      expect(await expectError(await infer("iris", "{\"inputs\": ["), 400)).toStartWith("The request body is not valid JSON");
    });
  });

  test("the other /v2 route, POST /v2/predict, keeps problem+json", async () => {
    await expectProblem(await postJson(app, "/v2/predict", { sepal_length: 5.1 }), 422, "/v2/predict");
  });
});

/**
 * The model of the specification's inference request example (specification/protocol/inference_rest.md,
 * "Inference Request Examples"): inputs "input0" (UINT32, [2, 2]) and "input1" (BOOL, [3]), output "output0"
 * (FP32, [3, 2]). It records its feeds and answers the example's output.
 */
class SpecExampleModel {
  readonly task = "tabular-classification" as const;
  readonly manifest = { ...realManifest("iris"), name: "mymodel", version: "10.0.0" };
  readonly feeds: Feeds[] = [];
  readonly signature = {
    inputs: [
      { name: "input0", type: "uint32", shape: [2, 2] },
      { name: "input1", type: "bool", shape: [3] },
    ],
    outputs: [{ name: "output0", type: "float32", shape: [3, 2] }],
  };

  async infer(feeds: Feeds): Promise<RowResult> {
    this.feeds.push(feeds);
    return { outputs: { output0: { type: "float32", dims: [3, 2], data: Float32Array.of(1.0, 1.1, 2.0, 2.1, 3.0, 3.1) } }, timing: { queueMs: 0, inferenceMs: 0 } };
  }
}

/** The fake catalog (iris, wine, states the test sets) plus the specification's example model. */
class CatalogWithSpecModel extends FakeRepository {
  readonly spec = new SpecExampleModel();
  override get names() {
    return [...super.names, "mymodel"];
  }
  override manifest(name: string): ModelManifest | undefined {
    return name === "mymodel" ? this.spec.manifest : super.manifest(name);
  }
  override get(name: string, task?: ModelTask): ServedModel {
    if (name === "mymodel") return this.spec as unknown as ServedModel;
    return task === undefined ? super.get(name) : super.get(name, task);
  }
}

describe("over a fake catalog", () => {
  const catalog = new CatalogWithSpecModel();
  const { app } = testApp({ catalog });
  beforeEach(() => {
    catalog.reset();
    catalog.spec.feeds.length = 0;
  });

  describe("the specification's inference request example", () => {
    // specification/protocol/inference_rest.md, "Inference Request Examples": the request, as printed.
    const example = {
      id: "42",
      inputs: [
        { name: "input0", shape: [2, 2], datatype: "UINT32", data: [1, 2, 3, 4] },
        { name: "input1", shape: [3], datatype: "BOOL", data: [true] },
      ],
      outputs: [{ name: "output0" }],
    };

    test("as printed, input1's shape [3] holds 3 values but the data has 1: 400 saying so", async () => {
      expect(await expectError(await postJson(app, "/v2/models/mymodel/infer", example), 400)).toBe("input 'input1' has shape [3], which holds 3 values, but 1 were given");
      expect(catalog.spec.feeds).toHaveLength(0);
    });

    test("with input1's data filling its shape, the example's response, with the model's name and version", async () => {
      const request = { ...example, inputs: [example.inputs[0], { ...example.inputs[1], data: [true, false, true] }] };
      const res = await postJson(app, "/v2/models/mymodel/infer", request);
      expect(res.status).toBe(200);
      // The response of the same section: output0, [3, 2], FP32 (compared as float32, which is what the model holds).
      const body = (await res.json()) as InferenceResponse;
      expect(body).toEqual({
        model_name: "mymodel",
        model_version: "10.0.0",
        id: "42",
        outputs: [{ name: "output0", shape: [3, 2], datatype: "FP32", data: Array.from(Float32Array.of(1.0, 1.1, 2.0, 2.1, 3.0, 3.1)) }],
      });
      expect(catalog.spec.feeds).toEqual([
        {
          input0: { type: "uint32", dims: [2, 2], data: Uint32Array.of(1, 2, 3, 4) },
          input1: { type: "bool", dims: [3], data: Uint8Array.of(1, 0, 1) },
        },
      ]);
    });

    test("at the version the specification's text uses, 'v10', 404: only the served version can be addressed", async () => {
      expect(await expectError(await postJson(app, "/v2/models/mymodel/versions/v10/infer", example), 404)).toBe("model 'mymodel' has no version 'v10'; the served version is 10.0.0");
    });

    test("an integer out of UINT32's range, and a number for BOOL, are named", async () => {
      const bad = (i: number, data: unknown[]) => ({ ...example, inputs: example.inputs.map((t, k) => (k === i ? { ...t, data } : t)) });
      expect(await expectError(await postJson(app, "/v2/models/mymodel/infer", bad(0, [1, 2, 3, -4])), 400)).toBe("input 'input0': data[3] is -4, not an integer from 0 to 4294967295 (UINT32)");
      expect(await expectError(await postJson(app, "/v2/models/mymodel/infer", bad(1, [1, 0, 1])), 400)).toBe("input 'input1': data[0] is 1, not true or false (BOOL)");
    });
  });

  describe("states", () => {
    test("server ready is 503 {\"error\"} naming the models not ready, with Retry-After", async () => {
      catalog.setState("wine", "loading");
      const res = await app.request("/v2/health/ready");
      expect(res.headers.get("retry-after")).toBe("1");
      expect(await expectError(res, 503)).toBe("wine is loading");
      // Liveness does not care.
      expect((await app.request("/v2/health/live")).status).toBe(200);
    });

    test("model ready is 503 while a model loads or when it failed, saying why", async () => {
      catalog.setState("iris", "loading");
      const loading = await app.request("/v2/models/iris/ready");
      expect(loading.headers.get("retry-after")).toBe("1");
      expect(await expectError(loading, 503)).toBe("model 'iris' is still loading");
      catalog.setState("iris", "failed", "iris/model.onnx: no such file");
      expect(await expectError(await app.request("/v2/models/iris/ready"), 503)).toBe("model 'iris' failed to load: iris/model.onnx: no such file");
      expect(await expectError(await app.request("/v2/models/iris"), 503)).toBe("model 'iris' failed to load: iris/model.onnx: no such file");
    });

    test("an overloaded model is 503 with Retry-After", async () => {
      catalog.model("iris").failWith = new EngineError("overloaded", "the queue is full (1024 requests waiting)", 1);
      const res = await postJson(app, "/v2/models/iris/infer", { inputs: [{ name: "input", shape: [1, 4], datatype: "FP32", data: SETOSA }] });
      expect(res.headers.get("retry-after")).toBe("1");
      expect(await expectError(res, 503)).toBe("the queue is full (1024 requests waiting)");
    });
  });
});

describe("keys, limits and media types keep their statuses, in the protocol's shape", () => {
  const { store, secret } = makeKeys([
    { name: "app", scopes: ["predict"] },
    { name: "writer", scopes: ["generate"] },
  ]);
  const body = { inputs: [{ name: "input", shape: [1, 4], datatype: "FP32", data: SETOSA }] };

  test("metadata, health and ready are public; infer needs the predict scope (401, 403)", async () => {
    const { app } = testApp({ keys: store });
    for (const path of ["/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/iris", "/v2/models/iris/ready", "/v2/models/iris/versions/1.0.0/ready"]) {
      expect({ path, status: (await app.request(path)).status }).toEqual({ path, status: 200 });
    }
    const anonymous = await postJson(app, "/v2/models/iris/infer", body);
    expect(anonymous.headers.get("www-authenticate")).toStartWith("Bearer");
    expect(await expectError(anonymous, 401)).toContain("'predict' scope");
    expect(await expectError(await postJson(app, "/v2/models/iris/infer", body, { "X-API-Key": secret.writer }), 403)).toBe(
      "API key 'writer' lacks the 'predict' scope this route needs; it has: generate.",
    );
    expect((await postJson(app, "/v2/models/iris/versions/1.0.0/infer", body, { Authorization: `Bearer ${secret.app}` })).status).toBe(200);
  });

  test("429 with Retry-After when the bucket is empty", async () => {
    const { app } = testApp({ env: { RATE_LIMIT_CAPACITY: "1" } });
    expect((await postJson(app, "/v2/models/iris/infer", body)).status).toBe(200);
    const limited = await postJson(app, "/v2/models/iris/infer", body);
    expect(limited.headers.get("retry-after")).not.toBeNull();
    expect(await expectError(limited, 429)).toStartWith("Rate limit exceeded");
  });

  test("413 for a body over the limit, 415 for one that is not JSON", async () => {
    const { app } = testApp({ env: { BODY_LIMIT_BYTES: "100" } });
    const big = { inputs: [{ name: "input", shape: [8, 4], datatype: "FP32", data: Array.from({ length: 32 }, () => 1.25) }] };
    expect(await expectError(await postJson(app, "/v2/models/iris/infer", big), 413)).toBe("The request body is larger than 100 bytes.");
    const text = await app.request("/v2/models/iris/infer", { method: "POST", headers: { "Content-Type": "text/plain" }, body: "{}" });
    expect(await expectError(text, 415)).toContain("application/json");
  });
});

describe("the OpenAPI document", () => {
  const { app } = testApp();
  type Operation = { tags: string[]; security?: Record<string, string[]>[]; responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }> };

  test("documents every route under one tag, infer behind the predict scope, errors in the protocol's schema", async () => {
    const doc = (await (await app.request("/doc")).json()) as { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, { example?: unknown }> } };
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })));
    const ours = operations.filter((o) => o.op.tags?.includes("Inference protocol (KServe v2)"));
    expect(ours.map((o) => `${o.method.toUpperCase()} ${o.path}`).sort()).toEqual([
      "GET /v2",
      "GET /v2/health/live",
      "GET /v2/health/ready",
      "GET /v2/models/{name}",
      "GET /v2/models/{name}/ready",
      "GET /v2/models/{name}/versions/{version}",
      "GET /v2/models/{name}/versions/{version}/ready",
      "POST /v2/models/{name}/infer",
      "POST /v2/models/{name}/versions/{version}/infer",
    ]);
    for (const { path, method, op } of ours) {
      const scopes = (op.security ?? []).flatMap((s) => Object.values(s).flat());
      expect({ path, method, scopes: [...new Set(scopes)] }).toEqual({ path, method, scopes: method === "post" ? ["predict"] : [] });
      const errors = Object.entries(op.responses).filter(([status]) => Number(status) >= 400);
      expect(errors.length).toBeGreaterThan(0);
      for (const [, response] of errors) expect(response.content?.["application/json"]?.schema.$ref).toBe("#/components/schemas/InferenceProtocolError");
    }
    const infer = doc.paths["/v2/models/{name}/infer"]!.post!;
    expect(Object.keys(infer.responses).sort()).toEqual(["200", "400", "401", "403", "404", "413", "415", "429", "500", "503"]);
    expect(doc.components.schemas.InferenceRequest!.example).toMatchObject({ inputs: [{ name: "input", datatype: "FP32" }] });
    expect(doc.components.schemas.InferenceModelMetadata!.example).toMatchObject({ platform: "onnx_onnxv1" });
  });
});
