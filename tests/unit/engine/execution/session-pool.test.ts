import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { EngineError } from "../../../../src/engine/errors.ts";
import { ModelRepository } from "../../../../src/engine/registry/repository.ts";
import { SessionPool } from "../../../../src/engine/execution/session-pool.ts";
import type { Classification, TabularModel } from "../../../../src/engine/tasks/tabular/classifier.ts";
import { engineOptions, tabularModel } from "../../../helpers/engine.ts";
import { MODELS_DIR } from "../../../helpers/fake-repository.ts";
import { modelsDirWith } from "../../../helpers/models-dir.ts";

const IRIS_ONNX = join(MODELS_DIR, "iris", "model.onnx");
const SETOSA = [5.1, 3.5, 1.4, 0.2];
const VERSICOLOR = [6.4, 3.2, 4.5, 1.5];
const VIRGINICA = [6.7, 3.0, 5.2, 2.3];
const WINE_CLASS_0 = [14.1, 2.16, 2.3, 18, 105, 2.95, 3.32, 0.22, 2.38, 5.75, 1.25, 3.17, 1510];
const WINE_CLASS_2 = [13.71, 5.65, 2.45, 20.5, 95, 1.68, 0.61, 0.52, 1.06, 7.7, 0.64, 1.74, 740];

/** Distinct, plausible iris rows (each gives different probabilities). */
const irisRows = (n: number) =>
  Array.from({ length: n }, (_, i) => [4.3 + (i % 37) * 0.1, 2 + (i % 13) * 0.17, 1 + (i % 29) * 0.2, 0.1 + (i % 17) * 0.14].map((x) => Math.round(x * 100) / 100));

const argmax = (xs: ArrayLike<number>) => Array.prototype.indexOf.call(xs, Math.max(...Array.from(xs)));

const feeds = (rows: number[][]) => ({ input: { type: "float32", dims: [rows.length, 4], data: new Float32Array(rows.flat()) } });

describe("SessionPool on models/iris/model.onnx", () => {
  let pool: SessionPool;
  beforeAll(async () => {
    pool = await SessionPool.create(IRIS_ONNX, { size: 2, intraOpThreads: 1 });
  });
  afterAll(async () => {
    await pool?.close();
  });

  test("reports its size and the graph's input and output", () => {
    expect(pool.size).toBe(2);
    expect(pool.inputs).toEqual([{ name: "input", type: "float32", shape: [expect.anything(), 4] }]);
    expect(pool.outputs.map((o) => o.name)).toContain("probabilities");
    expect(pool.outputs.find((o) => o.name === "probabilities")).toMatchObject({ type: "float32", shape: [expect.anything(), 3] });
  });

  test("runs a batch of two rows: float32 [2, 3] probabilities, one distribution per row", async () => {
    const out = await pool.run(feeds([SETOSA, VIRGINICA]));
    const p = out.probabilities!;
    expect(p.type).toBe("float32");
    expect(p.dims).toEqual([2, 3]);
    expect(p.data).toBeInstanceOf(Float32Array);
    const data = p.data as Float32Array;
    const rows = [Array.from(data.subarray(0, 3)), Array.from(data.subarray(3, 6))];
    for (const row of rows) {
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      for (const x of row) expect(x).toBeGreaterThanOrEqual(0);
    }
    expect(argmax(rows[0]!)).toBe(0); // setosa
    expect(argmax(rows[1]!)).toBe(2); // virginica
    expect(rows[0]![0]).toBeGreaterThan(0.99);
    expect(rows[1]![2]).toBeGreaterThan(0.99);
  });

  test("200 concurrent runs on 2 sessions each get their own answer", async () => {
    const rows = irisRows(200);
    const expected: number[][] = [];
    for (const row of rows) expected.push(Array.from((await pool.run(feeds([row]))).probabilities!.data as Float32Array));
    // The rows really differ, so a mixed-up answer would show.
    expect(new Set(expected.map((e) => e.join())).size).toBe(200);

    const got = await Promise.all(rows.map((row) => pool.run(feeds([row])).then((o) => Array.from(o.probabilities!.data as Float32Array))));
    expect(got).toEqual(expected);
  });

  test("an input the graph cannot take fails that run with inference_failed, and the pool keeps working", async () => {
    const bad = { input: { type: "float32", dims: [1, 3], data: new Float32Array([1, 2, 3]) } };
    const error = await pool.run(bad).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect(error).toMatchObject({ code: "inference_failed" });
    const out = await pool.run(feeds([SETOSA]));
    expect(argmax(out.probabilities!.data as Float32Array)).toBe(0);
  });

  test("create() with a missing file rejects with load_failed", async () => {
    const error = await SessionPool.create(join(MODELS_DIR, "iris", "missing.onnx"), { size: 2, intraOpThreads: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect(error).toMatchObject({ code: "load_failed" });
    expect((error as Error).message).toContain("missing.onnx");
  });

  test("create() with a file that is not ONNX rejects with load_failed", async () => {
    const error = await SessionPool.create(join(MODELS_DIR, "iris", "model.json"), { size: 1, intraOpThreads: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect(error).toMatchObject({ code: "load_failed" });
  });

  test("close() resolves after the sessions finish", async () => {
    const own = await SessionPool.create(IRIS_ONNX, { size: 2, intraOpThreads: 1 });
    const out = await own.run(feeds([VIRGINICA]));
    expect(argmax(out.probabilities!.data as Float32Array)).toBe(2);
    await own.close();
  });

  test("run() after close() rejects instead of hanging", async () => {
    const own = await SessionPool.create(IRIS_ONNX, { size: 1, intraOpThreads: 1 });
    await own.close();
    // The bug is that no event ever comes, so this one test needs a deadline.
    const outcome = await Promise.race([
      own.run(feeds([SETOSA])).then(
        () => "resolved",
        (e: unknown) => (e instanceof EngineError ? "rejected" : `rejected with ${e}`),
      ),
      new Promise<string>((resolve) => setTimeout(() => resolve("still pending after 1 s"), 1000).unref()),
    ]);
    expect(outcome).toBe("rejected");
  });
});

describe("SessionPool placement: a model cheaper than a worker round trip runs on the event loop", () => {
  const probe = feeds(irisRows(32));

  test("iris, whose batch of 32 runs in microseconds, is placed inline with one session and answers like the workers", async () => {
    const inline = await SessionPool.create(IRIS_ONNX, { size: 2, intraOpThreads: 1, inline: { probe, maxMs: 1000 } });
    const workers = await SessionPool.create(IRIS_ONNX, { size: 1, intraOpThreads: 1 });
    try {
      expect(inline.placement).toBe("inline");
      expect(inline.size).toBe(1);
      expect(workers.placement).toBe("worker");
      expect(inline.inputs).toEqual(workers.inputs);
      expect(inline.outputs).toEqual(workers.outputs);
      const rows = irisRows(50);
      const [a, b] = await Promise.all([inline, workers].map((p) => Promise.all(rows.map((row) => p.run(feeds([row])).then((o) => Array.from(o.probabilities!.data as Float32Array))))));
      expect(a).toEqual(b!);
    } finally {
      await inline.close();
      await workers.close();
    }
  });

  test("a model slower than the bound goes to worker threads", async () => {
    // No real run is faster than zero milliseconds.
    const pool = await SessionPool.create(IRIS_ONNX, { size: 2, intraOpThreads: 1, inline: { probe, maxMs: 0 } });
    try {
      expect(pool.placement).toBe("worker");
      expect(pool.size).toBe(2);
    } finally {
      await pool.close();
    }
  });

  test("a model file over 1 MiB is never parsed on the event loop: workers, however fast it would run", async () => {
    const pool = await SessionPool.create(join(MODELS_DIR, "kjv-gpt", "model.onnx"), { size: 1, intraOpThreads: 1, inline: { probe, maxMs: 1000 } });
    try {
      expect(pool.placement).toBe("worker");
    } finally {
      await pool.close();
    }
  });

  test("an inline run the graph cannot take fails with inference_failed, and the next run works", async () => {
    const pool = await SessionPool.create(IRIS_ONNX, { size: 1, intraOpThreads: 1, inline: { probe, maxMs: 1000 } });
    try {
      const error = await pool.run({ input: { type: "float32", dims: [1, 3], data: new Float32Array([1, 2, 3]) } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EngineError);
      expect(error).toMatchObject({ code: "inference_failed" });
      expect(argmax((await pool.run(feeds([VIRGINICA]))).probabilities!.data as Float32Array)).toBe(2);
    } finally {
      await pool.close();
    }
  });

  test("a missing file rejects with load_failed, inline as with workers", async () => {
    const error = await SessionPool.create(join(MODELS_DIR, "iris", "missing.onnx"), { size: 1, intraOpThreads: 1, inline: { probe, maxMs: 1000 } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect(error).toMatchObject({ code: "load_failed" });
  });
});

// Both placements: worker threads (any model of real size) and the event loop (iris and wine are fast enough).
const PLACEMENTS = [
  ["worker threads", 0],
  ["the event loop", 1000],
] as const;
for (const [placement, inlineInferenceMaxMs] of PLACEMENTS) describe(`TabularClassifier through the real ModelRepository, on ${placement}`, () => {
  let repository: ModelRepository;
  let iris: TabularModel;
  const one = async (model: TabularModel, row: number[]): Promise<Classification> => (await model.predict([row])).predictions[0]!;

  beforeAll(async () => {
    repository = new ModelRepository(modelsDirWith(["iris", "wine"]), engineOptions({ sessionsPerModel: 2, inlineInferenceMaxMs }));
    await repository.loadAll();
    iris = tabularModel(repository, "iris");
  });
  afterAll(async () => {
    await repository?.close();
  });

  test("every model loads and passes its self-test", async () => {
    expect(repository.status()).toEqual([
      { name: "iris", version: "1.0.0", versions: ["1.0.0"], task: "tabular-classification", state: "ready", loaded_at: expect.any(Number) },
      { name: "wine", version: "1.0.0", versions: ["1.0.0"], task: "tabular-classification", state: "ready", loaded_at: expect.any(Number) },
    ]);
    expect(await repository.readiness()).toEqual({ ready: true, models: repository.status() });
  });

  test("classifies known iris rows", async () => {
    const { predictions, timing } = await iris.predict([SETOSA, VERSICOLOR, VIRGINICA]);
    expect(predictions.map((p) => [p.class, p.label])).toEqual([
      [0, "setosa"],
      [1, "versicolor"],
      [2, "virginica"],
    ]);
    for (const p of predictions) {
      expect(p.probabilities).toHaveLength(3);
      expect(p.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(p.probabilities[p.class]).toBe(Math.max(...p.probabilities));
    }
    expect(timing.queueMs).toBeGreaterThanOrEqual(0);
    expect(timing.inferenceMs).toBeGreaterThanOrEqual(0);
  });

  test("classifies wine rows with the 13-feature wine model", async () => {
    const wine = tabularModel(repository, "wine");
    const { predictions } = await wine.predict([WINE_CLASS_0, WINE_CLASS_2]);
    expect(predictions.map((p) => p.label)).toEqual(["class_0", "class_2"]);
  });

  test("100 concurrent predict() calls each get their own row back", async () => {
    const rows = irisRows(100);
    const singles: Classification[] = [];
    for (const row of rows) singles.push(await one(iris, row));
    expect(new Set(singles.map((s) => s.probabilities.join())).size).toBe(100);
    expect(new Set(singles.map((s) => s.label)).size).toBe(3);

    const concurrent = await Promise.all(rows.map((row) => one(iris, row)));
    expect(concurrent).toEqual(singles);
  });

  test("many rows in one predict() call come back in order, as if sent one by one", async () => {
    const rows = irisRows(300); // more than maxBatchSize: runs as one oversized batch
    const { predictions } = await iris.predict(rows);
    expect(predictions).toHaveLength(300);
    const singles: Classification[] = [];
    for (const row of rows.slice(0, 40)) singles.push(await one(iris, row));
    expect(predictions.slice(0, 40)).toEqual(singles);
    expect(predictions[299]).toEqual(await one(iris, rows[299]!));
  });

  test("a row of the wrong width is refused with invalid_input", async () => {
    const error = await iris.predict([SETOSA, [1, 2, 3]]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect(error).toMatchObject({ code: "invalid_input", message: "row 1 has 3 features, expected 4" });
  });

  test("reload() swaps in a fresh copy while requests keep succeeding", async () => {
    const rows = irisRows(60);
    const expected = await Promise.all(rows.map((row) => one(iris, row)));
    const before = rows.slice(0, 30).map((row) => one(tabularModel(repository, "iris"), row));
    const status = await repository.reload("iris");
    const after = rows.slice(30).map((row) => one(tabularModel(repository, "iris"), row));
    expect(status).toEqual({ name: "iris", version: "1.0.0", versions: ["1.0.0"], task: "tabular-classification", state: "ready", loaded_at: expect.any(Number) });
    expect(await Promise.all([...before, ...after])).toEqual(expected);
    expect(tabularModel(repository, "iris")).not.toBe(iris);
    iris = tabularModel(repository, "iris");
  });
});
