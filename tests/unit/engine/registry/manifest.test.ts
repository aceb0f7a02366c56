import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EngineError } from "../../../../src/engine/errors.ts";
import { ManifestError, readManifest } from "../../../../src/engine/registry/manifest.ts";
import { ModelRepository } from "../../../../src/engine/registry/repository.ts";
import { MODELS_DIR, realManifest } from "../../../helpers/fake-repository.ts";
import { engineOptions } from "../../../helpers/engine.ts";
import { tempDir } from "../../../helpers/models-dir.ts";

const iris = realManifest("iris");
const options = engineOptions();

/** Writes `content` (JSON-encoded unless a string) to <root>/<name>/model.json; returns the model folder. */
function writeModel(root: string, name: string, content: unknown): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "model.json"), typeof content === "string" ? content : JSON.stringify(content));
  return dir;
}

/** The ManifestError readManifest throws for `content`. */
function manifestError(content: unknown): { error: ManifestError; file: string } {
  const dir = writeModel(tempDir(), "m", content);
  try {
    readManifest(dir);
  } catch (error) {
    if (error instanceof ManifestError) return { error, file: join(dir, "model.json") };
    throw error;
  }
  throw new Error("readManifest accepted the manifest");
}

describe("readManifest", () => {
  test("parses a valid manifest, defaulting what is optional", () => {
    const { description: _, training: __, ...minimal } = iris;
    const manifest = readManifest(writeModel(tempDir(), "m", minimal));
    expect(manifest).toEqual({ ...minimal, description: "" });
  });

  test("reads the shipped iris manifest", () => {
    const manifest = readManifest(join(MODELS_DIR, "iris"));
    expect(manifest.name).toBe("iris");
    expect(manifest.task).toBe("tabular-classification");
    if (manifest.task !== "tabular-classification") return;
    expect(manifest.onnx).toEqual({ input: "input", output: "probabilities" });
    expect(manifest.features.map((f) => f.name)).toEqual(["sepal_length", "sepal_width", "petal_length", "petal_width"]);
    expect(manifest.features[0]).toEqual({
      name: "sepal_length",
      description: "Sepal length",
      unit: "cm",
      exclusiveMinimum: 0,
      exclusiveMaximum: 30,
      example: 5.1,
    });
    expect(manifest.labels).toEqual(["setosa", "versicolor", "virginica"]);
  });

  test("a missing field is named with the file", () => {
    const { onnx: _, ...withoutOnnx } = iris;
    const { error, file } = manifestError(withoutOnnx);
    expect(error.message).toBe(`${file}: onnx: Invalid input: expected object, received undefined`);
  });

  test("several problems are all named", () => {
    const { error, file } = manifestError({ ...iris, version: "", labels: ["only-one"] });
    expect(error.message).toStartWith(`${file}: `);
    expect(error.message).toContain("version: ");
    expect(error.message).toContain("labels: Too small: expected array to have >=2 items");
  });

  test("an unknown task is refused, naming the task field", () => {
    const { error, file } = manifestError({ ...iris, task: "regression" });
    expect(error.message).toStartWith(`${file}: task: `);
  });

  test("a feature name that is not an identifier is refused, naming the feature", () => {
    const features = [{ ...iris.features[0]!, name: "sepal length" }, ...iris.features.slice(1)];
    const { error, file } = manifestError({ ...iris, features });
    expect(error.message).toBe(`${file}: features.0.name: feature names are identifiers (letters, digits, _)`);
  });

  test("a model name with upper-case letters is refused", () => {
    const { error, file } = manifestError({ ...iris, name: "Iris" });
    expect(error.message).toBe(`${file}: name: model names are lower-case letters, digits, '.', '_' and '-'`);
  });

  test("a non-numeric bound is refused, naming it", () => {
    const features = [{ ...iris.features[0]!, exclusiveMaximum: "30" }, ...iris.features.slice(1)];
    const { error } = manifestError({ ...iris, features });
    expect(error.message).toContain("features.0.exclusiveMaximum: ");
  });

  test("a root that is not an object is refused as (root)", () => {
    const { error, file } = manifestError("[1, 2]");
    expect(error.message).toStartWith(`${file}: (root): `);
  });

  test("invalid JSON is a ManifestError naming the file", () => {
    const { error, file } = manifestError('{"name": "iris",');
    expect(error.name).toBe("ManifestError");
    expect(error.message).toStartWith(`${file}: `);
    expect(error.message).toContain("JSON");
  });

  test("a missing model.json is a ManifestError naming the file", () => {
    const dir = tempDir();
    expect(() => readManifest(dir)).toThrow(new ManifestError(`${join(dir, "model.json")}: ENOENT: no such file or directory, open '${join(dir, "model.json")}'`));
  });

  test("duplicate feature names or labels are refused", () => {
    const duplicateFeature = writeModel(tempDir(), "m", { ...iris, features: [...iris.features, iris.features[0]] });
    expect(() => readManifest(duplicateFeature)).toThrow(ManifestError);
    const duplicateLabel = writeModel(tempDir(), "m", { ...iris, labels: ["setosa", "setosa", "virginica"] });
    expect(() => readManifest(duplicateLabel)).toThrow(ManifestError);
  });
});

describe("ModelRepository (manifests only, nothing loaded)", () => {
  test("reads one manifest per sub-folder, skipping folders without model.json", () => {
    const root = tempDir();
    writeModel(root, "zeta", { ...iris, name: "zeta" });
    writeModel(root, "alpha", { ...iris, name: "alpha" });
    mkdirSync(join(root, "recipes"));
    writeFileSync(join(root, "README.md"), "not a model");
    const repository = new ModelRepository(root, options);
    expect(repository.root).toBe(root);
    // Folders are read in name order.
    expect(repository.manifests.map((m) => m.name)).toEqual(["alpha", "zeta"]);
    expect(repository.status()).toEqual([
      { name: "alpha", version: "1.0.0", task: "tabular-classification", state: "loading" },
      { name: "zeta", version: "1.0.0", task: "tabular-classification", state: "loading" },
    ]);
  });

  test("get() names the model that is still loading (retry after 1 s) or unknown", () => {
    const root = tempDir();
    writeModel(root, "iris", iris);
    const repository = new ModelRepository(root, options);
    expect(() => repository.get("iris")).toThrow(new EngineError("not_ready", "model 'iris' is still loading"));
    expect(catchError(() => repository.get("iris"))).toMatchObject({ code: "not_ready", retryAfter: 1 });
    expect(catchError(() => repository.get("nope"))).toMatchObject({ code: "model_not_found", message: "no model named 'nope'; available: iris" });
  });

  test("an empty folder has no models", () => {
    expect(new ModelRepository(tempDir(), options).manifests).toEqual([]);
  });

  test("a missing folder is a ManifestError naming it", () => {
    const missing = join(tempDir(), "nowhere");
    expect(() => new ModelRepository(missing, options)).toThrow(new ManifestError(`model folder ${missing} does not exist`));
  });

  test("a file instead of a folder is a ManifestError", () => {
    const file = join(tempDir(), "models");
    writeFileSync(file, "");
    expect(() => new ModelRepository(file, options)).toThrow(new ManifestError(`model folder ${file} does not exist`));
  });

  // The folder is the model's name, so two models cannot share a name.
  test("a manifest naming another model than its folder is a ManifestError naming both", () => {
    const root = tempDir();
    writeModel(root, "iris", iris);
    const copy = writeModel(root, "iris-copy", iris);
    expect(() => new ModelRepository(root, options)).toThrow(new ManifestError(`${copy}: the manifest names the model 'iris', but its folder is 'iris-copy'`));
  });

  test("one bad manifest fails the whole repository, naming its file", () => {
    const root = tempDir();
    writeModel(root, "good", iris);
    writeModel(root, "bad", { ...iris, name: "bad", labels: [] });
    expect(() => new ModelRepository(root, options)).toThrow(`${join(root, "bad", "model.json")}: labels: `);
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("did not throw");
}
