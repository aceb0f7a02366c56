/**
 * The model repository over real model folders: what it reads at start, what a bad model does to the others
 * (nothing), reloads that change what is served, single-flight reloads, and reasons that never show where the
 * models folder is.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EngineError } from "../../../../src/engine/errors.ts";
import type { TabularManifest } from "../../../../src/engine/registry/manifest.ts";
import { ModelRepository } from "../../../../src/engine/registry/repository.ts";
import { createLogger } from "../../../../src/observability/logger.ts";
import { engineOptions, tabularModel } from "../../../helpers/engine.ts";
import { MODELS_DIR, realManifest, tinyLmManifest } from "../../../helpers/fake-repository.ts";
import { TINY_LM_DIR as TINY_LM } from "../../../helpers/generation.ts";
import { modelsDirCopy, tempDir } from "../../../helpers/models-dir.ts";
import type { ModelFiles } from "../../../../src/engine/registry/model-store.ts";

const iris = realManifest("iris");
const options = engineOptions();

/** Writes `content` (JSON-encoded unless a string) to <root>/<name>/model.json; returns the model folder. */
function writeModel(root: string, name: string, content: unknown): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "model.json"), typeof content === "string" ? content : JSON.stringify(content));
  return dir;
}

/** A models folder holding a real copy of iris (graph and manifest) under `name`, which the test may change. */
function irisCopy(root = tempDir(), name = "iris"): { root: string; dir: string } {
  const dir = join(root, name);
  cpSync(join(MODELS_DIR, "iris"), dir, { recursive: true });
  if (name !== "iris") writeFileSync(join(dir, "model.json"), JSON.stringify({ ...iris, name }));
  return { root, dir };
}

/** A logger whose lines the test reads. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  return { logger: createLogger("info", { write: (line: string) => lines.push(JSON.parse(line)) }), lines };
}

const open: ModelRepository[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});
function repositoryOf(root: string, logger = createLogger("silent"), versionsKept?: number) {
  const repository = new ModelRepository(root, { ...options, ...(versionsKept ? { versionsKept } : {}) }, logger);
  open.push(repository);
  return repository;
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("did not throw");
}

describe("manifests, read at construction", () => {
  test("one per sub-folder with a model.json, in name order; nothing loaded yet", () => {
    const root = tempDir();
    writeModel(root, "zeta", { ...iris, name: "zeta" });
    writeModel(root, "alpha", { ...iris, name: "alpha" });
    mkdirSync(join(root, "recipes"));
    writeFileSync(join(root, "README.md"), "not a model");
    const repository = repositoryOf(root);
    expect(repository.names).toEqual(["alpha", "zeta"]);
    expect(repository.manifest("alpha")).toEqual({ ...iris, name: "alpha" });
    expect(repository.status()).toEqual([
      { name: "alpha", version: "1.0.0", versions: ["1.0.0"], task: "tabular-classification", state: "loading" },
      { name: "zeta", version: "1.0.0", versions: ["1.0.0"], task: "tabular-classification", state: "loading" },
    ]);
  });

  test("get() names the model that is still loading (retry after 1 s) or unknown", () => {
    const root = tempDir();
    writeModel(root, "iris", iris);
    const repository = repositoryOf(root);
    expect(() => repository.get("iris")).toThrow(new EngineError("not_ready", "model 'iris' is still loading"));
    expect(catchError(() => repository.get("iris"))).toMatchObject({ code: "not_ready", retryAfter: 1 });
    expect(catchError(() => repository.get("nope"))).toMatchObject({ code: "model_not_found", message: "no model named 'nope'; available: iris" });
  });

  test("an empty folder has no models; a missing one, or a file, is a ManifestError naming it", () => {
    expect(repositoryOf(tempDir()).names).toEqual([]);
    const missing = join(tempDir(), "nowhere");
    expect(() => new ModelRepository(missing, options)).toThrow(`model folder ${missing} does not exist`);
    const file = join(tempDir(), "models");
    writeFileSync(file, "");
    expect(() => new ModelRepository(file, options)).toThrow(`model folder ${file} does not exist`);
  });

  test("a bad manifest marks its model failed, naming the file relative to the models folder; the others are untouched", () => {
    const root = tempDir();
    writeModel(root, "good", { ...iris, name: "good" });
    writeModel(root, "bad", { ...iris, name: "bad", labels: [] });
    writeModel(root, "broken", '{"name": "broken",');
    writeModel(root, "copy", iris); // names iris, in the folder "copy"
    const repository = repositoryOf(root);
    const status = Object.fromEntries(repository.status().map((s) => [s.name, s]));
    expect(status.good).toEqual({ name: "good", version: "1.0.0", versions: ["1.0.0"], task: "tabular-classification", state: "loading" });
    expect(status.bad).toEqual({ name: "bad", versions: [], state: "failed", error: expect.stringMatching(new RegExp(`^${escape("bad/model.json: labels: ")}`)) });
    expect(status.broken!.error).toStartWith("broken/model.json: ");
    expect(status.copy!.error).toBe("copy/model.json: the manifest names the model 'iris', but its folder is 'copy'");
    for (const s of Object.values(status)) expect(s.error ?? "").not.toContain(root);
    expect(repository.manifest("bad")).toBeUndefined();
    expect(catchError(() => repository.get("bad"))).toMatchObject({ code: "not_ready", message: expect.stringContaining("failed to load: bad/model.json") });
  });
});

describe("loading and reloading real models", () => {
  test("a corrupt graph fails its model alone, with a reason that names the file but not where the models folder is", async () => {
    const { root } = irisCopy();
    irisCopy(root, "corrupt");
    writeFileSync(join(root, "corrupt", "model.onnx"), "not a graph");
    const { logger, lines } = capturingLogger();
    const repository = repositoryOf(root, logger);
    await repository.loadAll();
    const [corrupt, ok] = repository.status();
    expect(ok).toMatchObject({ name: "iris", state: "ready" });
    expect(corrupt).toMatchObject({ name: "corrupt", state: "failed" });
    expect(corrupt!.error).toContain("corrupt/model.onnx");
    expect(corrupt!.error).not.toContain(root);
    // The log keeps the whole path, for whoever runs the server.
    const failure = lines.find((l) => l.msg === "model failed to load" && l.model === "corrupt");
    expect(JSON.stringify(failure)).toContain(join(root, "corrupt"));
    expect(tabularModel(repository, "iris").manifest.name).toBe("iris");
  });

  test("a reload serves the manifest on disk now: new features, new labels, a new revision", async () => {
    const { root, dir } = irisCopy();
    const repository = repositoryOf(root);
    await repository.loadAll();
    const before = repository.revision;
    const renamed: TabularManifest = {
      ...iris,
      version: "1.1.0",
      features: iris.features.map((f, i) => (i === 0 ? { ...f, name: "sepal_len" } : f)),
      labels: ["a", "b", "c"],
    };
    writeFileSync(join(dir, "model.json"), JSON.stringify(renamed));
    expect(await repository.reload("iris")).toMatchObject({ name: "iris", version: "1.1.0", state: "ready" });
    expect(repository.manifest("iris")).toEqual(renamed);
    expect(tabularModel(repository, "iris").manifest).toEqual(renamed);
    expect(repository.revision).toBeGreaterThan(before);
    const { predictions } = await tabularModel(repository, "iris").predict([[5.1, 3.5, 1.4, 0.2]]);
    expect(predictions[0]!.label).toBe("a");
  });

  test("a reload that fails is load_failed with the reason; the version serving keeps serving, unchanged", async () => {
    const { root, dir } = irisCopy();
    const repository = repositoryOf(root);
    await repository.loadAll();
    const serving = tabularModel(repository, "iris");
    writeFileSync(join(dir, "model.json"), JSON.stringify({ ...iris, labels: ["only-one"] }));
    const error = await repository.reload("iris").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineError);
    // (Fields read one by one: toMatchObject with a matcher would write the matcher into an Error's message.)
    expect((error as EngineError).code).toBe("load_failed");
    expect((error as EngineError).message).toStartWith("model 'iris' could not be loaded: iris/model.json: labels: ");
    expect((error as EngineError).message).not.toContain(root);
    expect(repository.status()).toEqual([expect.objectContaining({ name: "iris", version: "1.0.0", state: "ready" })]);
    expect(tabularModel(repository, "iris")).toBe(serving);
    expect(repository.manifest("iris")).toEqual(iris);
    // The graph going bad is the same story.
    writeFileSync(join(dir, "model.json"), JSON.stringify(iris));
    writeFileSync(join(dir, "model.onnx"), "not a graph");
    expect(await repository.reload("iris").catch((e: EngineError) => e.code)).toBe("load_failed");
    expect(tabularModel(repository, "iris")).toBe(serving);
  });

  test("a failed model is served once its files are fixed and it is reloaded", async () => {
    const root = tempDir();
    writeModel(root, "iris", { ...iris, labels: [] });
    cpSync(join(MODELS_DIR, "iris", "model.onnx"), join(root, "iris", "model.onnx"));
    const repository = repositoryOf(root);
    await repository.loadAll();
    expect(repository.status()[0]).toMatchObject({ state: "failed" });
    writeFileSync(join(root, "iris", "model.json"), JSON.stringify(iris));
    expect(await repository.reload("iris")).toMatchObject({ state: "ready", version: "1.0.0" });
    expect(repository.status()[0]).not.toHaveProperty("error");
  });

  test("concurrent reloads share loads: one running and one follow-up, however many are asked for", async () => {
    const { root } = irisCopy();
    const { logger, lines } = capturingLogger();
    const repository = repositoryOf(root, logger);
    await repository.loadAll();
    const results = await Promise.all(Array.from({ length: 20 }, () => repository.reload("iris")));
    expect(results.every((r) => r.state === "ready")).toBe(true);
    expect(lines.filter((l) => l.msg === "model reloaded").length).toBe(2);
    // Once they are done, the next reload is a load of its own again.
    await repository.reload("iris");
    expect(lines.filter((l) => l.msg === "model reloaded").length).toBe(3);
  });

  test("requests in flight during a reload all finish, on the old version or the new", async () => {
    const { root } = irisCopy();
    const repository = repositoryOf(root);
    await repository.loadAll();
    const row = [6.7, 3.0, 5.2, 2.3];
    const inFlight = Array.from({ length: 300 }, () => tabularModel(repository, "iris").predict([row]));
    // And clients that keep asking while the new version loads and swaps in, each taking the model served now.
    let reloading = true;
    const reloaded = repository.reload("iris").finally(() => (reloading = false));
    const during: Promise<unknown>[] = [];
    const client = async () => {
      while (reloading) {
        const request = tabularModel(repository, "iris").predict([row]);
        during.push(request);
        await request.catch(() => {});
      }
    };
    await Promise.all([client(), client(), client(), client(), reloaded]);
    const outcomes = await Promise.allSettled([...inFlight, ...during]);
    expect(during.length).toBeGreaterThan(4);
    expect(outcomes.filter((o) => o.status === "rejected")).toEqual([]);
    expect(new Set(outcomes.map((o) => (o as PromiseFulfilledResult<{ predictions: { label: string }[] }>).value.predictions[0]!.label))).toEqual(new Set(["virginica"]));
  });
});

const IRIS_ONNX = readFileSync(join(MODELS_DIR, "iris", "model.onnx"));
/** An upload of iris's graph with `changes` to its manifest. */
const irisUpload = (changes: Partial<TabularManifest>, graph: Uint8Array = IRIS_ONNX): ModelFiles => ({
  "model.onnx": graph,
  "model.json": new TextEncoder().encode(JSON.stringify({ ...iris, ...changes })),
});
const SETOSA = [5.1, 3.5, 1.4, 0.2];
const labelOf = async (repository: ModelRepository, name: string) => (await tabularModel(repository, name).predict([SETOSA])).predictions[0]!.label;

async function engineError(promise: Promise<unknown>): Promise<EngineError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof EngineError)) throw new Error(`expected an EngineError, got ${String(error)}`);
  return error;
}

describe("uploads, rollbacks and deletions", () => {
  test("a new version serves once it has passed an inference; requests in flight finish on the old one; the revision grows", async () => {
    const root = modelsDirCopy(["iris"]);
    const repository = repositoryOf(root);
    await repository.loadAll();
    const before = repository.revision;
    const old = tabularModel(repository, "iris");
    const inFlight = Array.from({ length: 200 }, () => old.predict([SETOSA]));
    const status = await repository.update("iris", irisUpload({ version: "1.1.0", labels: ["a", "b", "c"] }));
    expect(status).toMatchObject({ name: "iris", version: "1.1.0", versions: ["1.0.0", "1.1.0"], state: "ready" });
    expect((await Promise.all(inFlight)).map((r) => r.predictions[0]!.label)).toEqual(Array(200).fill("setosa"));
    expect(await labelOf(repository, "iris")).toBe("a");
    expect(repository.manifest("iris")!.version).toBe("1.1.0");
    expect(repository.revision).toBeGreaterThan(before);
    // The old sessions close once their requests are done.
    expect(await engineError(old.predict([SETOSA]))).toMatchObject({ code: "not_ready" });
  });

  test("a version that fails to load or to run is load_failed with the reason; the served version and the disk are unchanged", async () => {
    const root = modelsDirCopy(["iris"]);
    const repository = repositoryOf(root);
    await repository.loadAll();
    const serving = tabularModel(repository, "iris");
    const corrupt = await engineError(repository.update("iris", irisUpload({ version: "1.1.0" }, new TextEncoder().encode("not a graph"))));
    expect(corrupt.code).toBe("load_failed");
    expect(corrupt.message).toStartWith("model 'iris' could not be loaded: ");
    expect(corrupt.message).toContain("model.onnx");
    expect(corrupt.message).not.toContain(root);
    // Four labels for a graph of three outputs: it loads, and its check fails.
    const mismatch = await engineError(repository.update("iris", irisUpload({ version: "1.1.0", labels: ["a", "b", "c", "d"] })));
    expect(mismatch.code).toBe("load_failed");
    expect(tabularModel(repository, "iris")).toBe(serving);
    expect(repository.status("iris")).toMatchObject({ version: "1.0.0", versions: ["1.0.0"], state: "ready" });
    expect(readdirSync(join(root, "iris")).sort()).toEqual(["model.json", "model.onnx"]);
  });

  test("a version must be newer than every kept one (conflict), and the upload's name the model's (invalid_input)", async () => {
    const root = modelsDirCopy(["iris"]);
    const repository = repositoryOf(root);
    await repository.loadAll();
    await repository.update("iris", irisUpload({ version: "1.10.0" }));
    const duplicate = await engineError(repository.update("iris", irisUpload({ version: "1.10.0" })));
    expect(duplicate.code).toBe("conflict");
    expect(duplicate.message).toBe("version 1.10.0 of model 'iris' already exists: a new version must be newer than every kept version (1.0.0, 1.10.0)");
    // 1.9.0 < 1.10.0 as versions, though not as text.
    expect((await engineError(repository.update("iris", irisUpload({ version: "1.9.0" })))).message).toStartWith("version 1.9.0 is older than 1.10.0");
    const renamed = await engineError(repository.update("iris", irisUpload({ name: "wine", version: "2.0.0" })));
    expect(renamed).toMatchObject({ code: "invalid_input", message: "model.json: name is 'wine', but this upload is a version of 'iris'" });
    expect(readdirSync(join(root, "iris")).sort()).toEqual(["1.0.0", "1.10.0", "CURRENT"]);
  });

  test("rollback serves the previous version and removes the one it leaves; with none before it, a conflict", async () => {
    const root = modelsDirCopy(["iris"]);
    const repository = repositoryOf(root, undefined, 3);
    await repository.loadAll();
    await repository.update("iris", irisUpload({ version: "1.1.0", labels: ["a", "b", "c"] }));
    await repository.update("iris", irisUpload({ version: "1.2.0", labels: ["x", "y", "z"] }));
    expect(await labelOf(repository, "iris")).toBe("x");
    expect(await repository.rollback("iris")).toMatchObject({ version: "1.1.0", versions: ["1.0.0", "1.1.0"] });
    expect(await labelOf(repository, "iris")).toBe("a");
    expect(await repository.rollback("iris")).toMatchObject({ version: "1.0.0", versions: ["1.0.0"] });
    expect(await labelOf(repository, "iris")).toBe("setosa");
    const none = await engineError(repository.rollback("iris"));
    expect(none).toMatchObject({ code: "conflict", message: "model 'iris' has no version before 1.0.0 to roll back to (kept: 1.0.0)" });
    expect(readdirSync(join(root, "iris")).sort()).toEqual(["1.0.0", "CURRENT"]);
  });

  test("MODEL_VERSIONS_KEPT=1 keeps no version to roll back to", async () => {
    const root = modelsDirCopy(["iris"]);
    const repository = repositoryOf(root, undefined, 1);
    await repository.loadAll();
    expect(await repository.update("iris", irisUpload({ version: "2.0.0" }))).toMatchObject({ versions: ["2.0.0"] });
    expect((await engineError(repository.rollback("iris"))).code).toBe("conflict");
  });

  test("a created model serves at once; its name then conflicts; deleted, it is gone from disk, and can be created again", async () => {
    const root = modelsDirCopy(["iris"]);
    const repository = repositoryOf(root);
    await repository.loadAll();
    const revision = repository.revision;
    expect(await repository.create(irisUpload({ name: "flowers", version: "3.0.0" }))).toMatchObject({ name: "flowers", version: "3.0.0", versions: ["3.0.0"], state: "ready" });
    expect(repository.names).toEqual(["flowers", "iris"]);
    expect(await labelOf(repository, "flowers")).toBe("setosa");
    expect(repository.revision).toBeGreaterThan(revision);
    expect((await engineError(repository.create(irisUpload({ name: "flowers", version: "4.0.0" })))).code).toBe("conflict");
    const model = tabularModel(repository, "flowers");
    const inFlight = Array.from({ length: 100 }, () => model.predict([SETOSA]));
    await repository.remove("flowers");
    expect((await Promise.all(inFlight)).length).toBe(100);
    expect(repository.names).toEqual(["iris"]);
    expect(catchError(() => repository.get("flowers"))).toMatchObject({ code: "model_not_found" });
    expect(readdirSync(root)).toEqual(["iris"]);
    expect(await repository.create(irisUpload({ name: "flowers", version: "1.0.0" }))).toMatchObject({ version: "1.0.0", state: "ready" });
    expect((await engineError(repository.remove("nope"))).code).toBe("model_not_found");
  });

  test("a text model uploaded with its tokenizer generates, also once its files have moved into place, and reloads from there", async () => {
    const root = tempDir();
    const repository = repositoryOf(root);
    const files = (version: string): ModelFiles => ({
      "model.onnx": readFileSync(join(TINY_LM, "model.onnx")),
      "model.json": new TextEncoder().encode(JSON.stringify({ ...tinyLmManifest(), name: "lm", version })),
      "tokenizer.json": readFileSync(join(TINY_LM, "tokenizer.json")),
    });
    expect(await repository.create(files("1.0.0"))).toMatchObject({ name: "lm", task: "text-generation", state: "ready" });
    await repository.get("lm", "text-generation").selfTest();
    expect(await repository.update("lm", files("1.1.0"))).toMatchObject({ version: "1.1.0", versions: ["1.0.0", "1.1.0"] });
    expect(await repository.reload("lm")).toMatchObject({ version: "1.1.0", state: "ready" });
    await repository.get("lm", "text-generation").selfTest();
    expect(readdirSync(join(root, "lm", "1.1.0")).sort()).toEqual(["model.json", "model.onnx", "tokenizer.json"]);
  });

  test("a restart on the same folder serves the current version", async () => {
    const root = modelsDirCopy(["iris"]);
    const first = repositoryOf(root);
    await first.loadAll();
    await first.update("iris", irisUpload({ version: "1.1.0", labels: ["a", "b", "c"] }));
    await first.create(irisUpload({ name: "flowers", version: "2.0.0", labels: ["p", "q", "r"] }));
    await first.close();
    const second = repositoryOf(root);
    await second.loadAll();
    expect(second.status()).toEqual([
      expect.objectContaining({ name: "flowers", version: "2.0.0", versions: ["2.0.0"], state: "ready" }),
      expect.objectContaining({ name: "iris", version: "1.1.0", versions: ["1.0.0", "1.1.0"], state: "ready" }),
    ]);
    expect(await labelOf(second, "iris")).toBe("a");
    expect(await second.rollback("iris")).toMatchObject({ version: "1.0.0" });
  });

  test("a model folder that is a symbolic link is served, but never changed: conflicts, and its target untouched", async () => {
    const outside = modelsDirCopy(["iris"]);
    const root = tempDir();
    symlinkSync(join(outside, "iris"), join(root, "iris"), "dir");
    const repository = repositoryOf(root);
    await repository.loadAll();
    for (const change of [repository.update("iris", irisUpload({ version: "2.0.0" })), repository.rollback("iris"), repository.remove("iris")]) {
      const error = await engineError(change);
      expect(error).toMatchObject({ code: "conflict", message: "model 'iris' is a symbolic link in the models folder: it is served, but changed only on disk" });
    }
    expect(readdirSync(join(outside, "iris")).sort()).toEqual(["model.json", "model.onnx"]);
    expect(readdirSync(root)).toEqual(["iris"]);
    expect(await labelOf(repository, "iris")).toBe("setosa");
  });

  test("changes to one model run one at a time, in the order asked", async () => {
    const root = modelsDirCopy(["iris"]);
    const repository = repositoryOf(root);
    await repository.loadAll();
    const results = await Promise.all([
      repository.update("iris", irisUpload({ version: "1.1.0" })),
      repository.update("iris", irisUpload({ version: "1.2.0" })),
      repository.rollback("iris"),
      repository.reload("iris"),
    ]);
    expect(results.map((r) => r.version)).toEqual(["1.1.0", "1.2.0", "1.1.0", "1.1.0"]);
    expect(readdirSync(join(root, "iris")).sort()).toEqual(["1.1.0", "CURRENT"]);
    expect(existsSync(join(root, "iris", "1.2.0"))).toBe(false);
  });
});

describe("readiness", () => {
  test("ready when every model passed a real inference; a flood of probes shares one self-test per model per second", async () => {
    const { root } = irisCopy();
    const repository = repositoryOf(root);
    await repository.loadAll();
    const model = tabularModel(repository, "iris");
    let selfTests = 0;
    const selfTest = model.selfTest.bind(model);
    model.selfTest = () => (selfTests++, selfTest());
    const answers = await Promise.all(Array.from({ length: 200 }, () => repository.readiness()));
    expect(answers.every((a) => a.ready)).toBe(true);
    expect(selfTests).toBe(1);
    // One after another too: a check passed within the last second is evidence enough.
    for (let i = 0; i < 50; i++) expect((await repository.readiness()).ready).toBe(true);
    expect(selfTests).toBe(1);
  });

  test("a model whose self-test fails is reported failed, with the reason; loading and failed models as they stand", async () => {
    const { root } = irisCopy();
    writeModel(root, "broken", { ...iris, name: "broken", labels: [] });
    const repository = repositoryOf(root);
    await repository.loadAll();
    const model = tabularModel(repository, "iris");
    model.selfTest = () => Promise.reject(new EngineError("inference_failed", "the graph returned nothing"));
    const { ready, models } = await repository.readiness();
    expect(ready).toBe(false);
    expect(models).toEqual([
      expect.objectContaining({ name: "broken", state: "failed", error: expect.stringMatching(new RegExp(`^${escape("broken/model.json")}`)) }),
      expect.objectContaining({ name: "iris", state: "failed", error: "self-test failed: the graph returned nothing" }),
    ]);
  });

  test("a model too busy to take the self-test (its queue is full) is busy, not failed", async () => {
    const { root } = irisCopy();
    const repository = repositoryOf(root);
    await repository.loadAll();
    const model = tabularModel(repository, "iris");
    model.selfTest = () => Promise.reject(new EngineError("overloaded", "the queue is full (1024 requests waiting)", 1));
    expect(await repository.readiness()).toMatchObject({ ready: true, models: [{ name: "iris", state: "ready" }] });
  });
});

/** `text` as a regular expression matching it literally. */
function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
