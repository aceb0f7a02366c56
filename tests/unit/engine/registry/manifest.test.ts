import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { compareVersions, ManifestError, readManifest } from "../../../../src/engine/registry/manifest.ts";
import { MODELS_DIR, realManifest } from "../../../helpers/fake-repository.ts";
import { tempDir } from "../../../helpers/models-dir.ts";

const iris = realManifest("iris");

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
    expect(error.message).toBe(`${file}: onnx: is required`);
  });

  test("several problems are all named", () => {
    const { error, file } = manifestError({ ...iris, version: "", labels: ["only-one"] });
    expect(error.message).toStartWith(`${file}: `);
    expect(error.message).toContain("version: ");
    expect(error.message).toContain("labels: must hold at least 2 items");
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
    expect(error.message).toBe(`${file}: name: model names are 1 to 63 lower-case letters, digits, '.', '_' and '-', starting with a letter or digit`);
  });

  test("a version that is not MAJOR.MINOR.PATCH is refused", () => {
    for (const version of ["1", "1.0", "v1.0.0", "1.0.0-beta", "01.0.0"]) {
      const { error, file } = manifestError({ ...iris, version });
      expect(error.message).toBe(`${file}: version: versions are MAJOR.MINOR.PATCH, e.g. 1.0.0`);
    }
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

describe("compareVersions", () => {
  test("orders MAJOR.MINOR.PATCH numerically, not as text", () => {
    expect(compareVersions("1.10.0", "1.9.0")).toBeGreaterThan(0);
    expect(compareVersions("2.0.0", "10.0.0")).toBeLessThan(0);
    expect(compareVersions("1.0.1", "1.0.0")).toBeGreaterThan(0);
    expect(compareVersions("1.2.3", "1.2.3")).toBe(0);
    expect(["1.10.0", "1.2.0", "0.9.9", "1.9.10"].sort(compareVersions)).toEqual(["0.9.9", "1.2.0", "1.9.10", "1.10.0"]);
  });
});
