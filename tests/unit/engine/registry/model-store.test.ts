/**
 * The models folder on disk: the layout of versions, commits that leave the old state or the new, leftovers of
 * interrupted changes removed at start, and nothing written outside the models folder or through a link.
 */
import { describe, expect, test } from "bun:test";
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EngineError } from "../../../../src/engine/errors.ts";
import { ModelStore, type ModelFiles } from "../../../../src/engine/registry/model-store.ts";
import { MODELS_DIR, realManifest, tinyLmManifest } from "../../../helpers/fake-repository.ts";
import { modelsDirCopy, tempDir } from "../../../helpers/models-dir.ts";

const iris = realManifest("iris");
const IRIS_ONNX = readFileSync(join(MODELS_DIR, "iris", "model.onnx"));
const TINY_LM = join(import.meta.dir, "..", "..", "..", "fixtures", "tiny-lm");

const irisFiles = (manifest: object = {}): ModelFiles => ({ "model.onnx": IRIS_ONNX, "model.json": new TextEncoder().encode(JSON.stringify({ ...iris, ...manifest })) });

/** Every path under `dir`, relative to it, sorted (links not followed). */
function tree(dir: string, prefix = ""): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const path = join(dir, entry);
      const name = prefix + entry;
      return lstatSync(path).isDirectory() ? [`${name}/`, ...tree(path, `${name}/`)] : [name];
    });
}

async function rejection(promise: Promise<unknown>): Promise<EngineError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof EngineError)) throw new Error(`expected an EngineError, got ${String(error)}`);
  return error;
}

describe("layout", () => {
  test("a flat model is one version, its manifest's, served from its folder", () => {
    const root = modelsDirCopy(["iris"]);
    const store = new ModelStore(root, 2);
    expect(store.scan()).toEqual(["iris"]);
    expect(store.layout("iris")).toEqual({ dir: join(root, "iris"), versions: ["1.0.0"], linked: false });
  });

  test("a versioned model serves the version CURRENT names; versions sort as numbers, not text", () => {
    const root = tempDir();
    for (const v of ["1.10.0", "1.9.0", "1.2.0"]) cpSync(join(MODELS_DIR, "iris"), join(root, "iris", v), { recursive: true });
    writeFileSync(join(root, "iris", "CURRENT"), "1.10.0\n");
    const store = new ModelStore(root, 5);
    expect(store.scan()).toEqual(["iris"]);
    expect(store.layout("iris")).toEqual({ dir: join(root, "iris", "1.10.0"), current: "1.10.0", versions: ["1.2.0", "1.9.0", "1.10.0"], linked: false });
  });

  test("a CURRENT naming no version, or a version without a folder, is an error naming the file", () => {
    const root = tempDir();
    mkdirSync(join(root, "iris", "1.0.0"), { recursive: true });
    writeFileSync(join(root, "iris", "CURRENT"), "../../etc\n");
    const store = new ModelStore(root, 2);
    expect(store.scan()).toEqual(["iris"]);
    expect(() => store.layout("iris")).toThrow(`${join(root, "iris", "CURRENT")}: '../../etc' is not a version (MAJOR.MINOR.PATCH)`);
    writeFileSync(join(root, "iris", "CURRENT"), "2.0.0");
    expect(() => store.layout("iris")).toThrow("names version 2.0.0, which has no folder");
  });

  test("names that could leave the models folder are refused before any path is built", () => {
    const store = new ModelStore(tempDir(), 2);
    for (const name of ["..", ".", "../x", "a/b", "A", "é", "", ".upload-x", "x".repeat(64)]) {
      expect(() => store.folder(name)).toThrow(EngineError);
    }
  });
});

describe("commits", () => {
  test("a new model appears whole, by one rename: version folder and CURRENT", async () => {
    const root = tempDir();
    const store = new ModelStore(root, 2);
    const staged = await store.stage(root, irisFiles({ name: "flowers", version: "2.0.0" }));
    // Until the commit, nothing in the models folder is a model.
    expect(readdirSync(root)).toEqual([expect.stringMatching(/^\.upload-[0-9a-f]+$/)]);
    const dir = await store.commitModel("flowers", staged);
    expect(dir).toBe(join(root, "flowers", "2.0.0"));
    expect(tree(root)).toEqual(["flowers/", "flowers/2.0.0/", "flowers/2.0.0/model.json", "flowers/2.0.0/model.onnx", "flowers/CURRENT"]);
    expect(readFileSync(join(root, "flowers", "CURRENT"), "utf8")).toBe("2.0.0\n");
    expect(readFileSync(join(dir, "model.onnx"))).toEqual(IRIS_ONNX);
  });

  test("a new model whose name appeared meanwhile is a conflict, and the existing folder is untouched", async () => {
    const root = modelsDirCopy(["iris"]);
    const store = new ModelStore(root, 2);
    const staged = await store.stage(root, irisFiles({ version: "9.0.0" }));
    expect((await rejection(store.commitModel("iris", staged))).code).toBe("conflict");
    expect(tree(join(root, "iris"))).toEqual(["model.json", "model.onnx"]);
  });

  test("a flat model's first upload: its files become version folders, CURRENT the new one; the flat files go", async () => {
    const root = modelsDirCopy(["iris"]);
    const store = new ModelStore(root, 2);
    const staged = await store.stage(join(root, "iris"), irisFiles({ version: "1.1.0" }));
    await store.commitVersion("iris", staged);
    expect(tree(join(root, "iris"))).toEqual(["1.0.0/", "1.0.0/model.json", "1.0.0/model.onnx", "1.1.0/", "1.1.0/model.json", "1.1.0/model.onnx", "CURRENT"]);
    expect(store.layout("iris")).toMatchObject({ current: "1.1.0", versions: ["1.0.0", "1.1.0"] });
  });

  test("MODEL_VERSIONS_KEPT: after a commit the oldest versions beyond it are removed", async () => {
    const root = modelsDirCopy(["iris"]);
    const store = new ModelStore(root, 2);
    for (const version of ["1.1.0", "1.2.0", "1.3.0"]) await store.commitVersion("iris", await store.stage(join(root, "iris"), irisFiles({ version })));
    expect(store.layout("iris")).toMatchObject({ current: "1.3.0", versions: ["1.2.0", "1.3.0"] });
    expect(readdirSync(join(root, "iris")).sort()).toEqual(["1.2.0", "1.3.0", "CURRENT"]);
  });

  test("a rollback writes CURRENT back one version and removes the one it leaves", async () => {
    const root = modelsDirCopy(["iris"]);
    const store = new ModelStore(root, 3);
    await store.commitVersion("iris", await store.stage(join(root, "iris"), irisFiles({ version: "1.1.0" })));
    await store.commitRollback("iris", "1.1.0", "1.0.0");
    expect(readdirSync(join(root, "iris")).sort()).toEqual(["1.0.0", "CURRENT"]);
    expect(store.layout("iris")).toMatchObject({ current: "1.0.0", versions: ["1.0.0"] });
  });

  test("a deletion takes the folder out of the models folder by one rename, then deletes it", async () => {
    const root = modelsDirCopy(["iris", "wine"]);
    const store = new ModelStore(root, 2);
    const trash = await store.moveAway("wine");
    expect(readdirSync(root).sort()).toEqual([expect.stringMatching(/^\.trash-[0-9a-f]+$/), "iris"]);
    expect(existsSync(join(trash, "model.onnx"))).toBe(true);
    await store.purge(trash);
    expect(readdirSync(root)).toEqual(["iris"]);
  });
});

describe("staging an upload", () => {
  test("a manifest that fails validation names model.json and the field, and leaves nothing behind", async () => {
    const root = tempDir();
    const store = new ModelStore(root, 2);
    const error = await rejection(store.stage(root, irisFiles({ labels: ["only"] })));
    expect(error.code).toBe("invalid_input");
    expect(error.message).toStartWith("model.json: labels: ");
    expect(error.message).not.toContain(root);
    expect(readdirSync(root)).toEqual([]);
  });

  test("a text model needs tokenizer.json, saved under the manifest's tokenizer name; other models take none", async () => {
    const root = tempDir();
    const store = new ModelStore(root, 2);
    const lm = { "model.onnx": readFileSync(join(TINY_LM, "model.onnx")), "model.json": new TextEncoder().encode(JSON.stringify({ ...tinyLmManifest(), tokenizer: "vocab.json" })) };
    const missing = await rejection(store.stage(root, lm));
    expect(missing.message).toBe("tokenizer.json: a text-generation model needs its tokenizer");
    const staged = await store.stage(root, { ...lm, "tokenizer.json": readFileSync(join(TINY_LM, "tokenizer.json")) });
    expect(readdirSync(staged.dir).sort()).toEqual(["model.json", "model.onnx", "vocab.json"]);
    await store.discard(staged);
    const extra = await rejection(store.stage(root, { ...irisFiles(), "tokenizer.json": new Uint8Array([1]) }));
    expect(extra.message).toBe("tokenizer.json: a tabular-classification model takes no tokenizer");
    expect(readdirSync(root)).toEqual([]);
  });
});

describe("at start: leftovers of interrupted changes", () => {
  test("work folders and files, and versions never made current, are removed; the served version is untouched", () => {
    const root = tempDir();
    for (const v of ["1.0.0", "1.1.0", "1.2.0"]) cpSync(join(MODELS_DIR, "iris"), join(root, "iris", v), { recursive: true });
    writeFileSync(join(root, "iris", "CURRENT"), "1.1.0\n");
    // An upload of a new model cut off mid-write, one of a new version, a CURRENT being written, a deletion.
    mkdirSync(join(root, ".upload-0a1b2c", "staged"), { recursive: true });
    writeFileSync(join(root, ".upload-0a1b2c", "staged", "model.onnx"), IRIS_ONNX.subarray(0, 100));
    mkdirSync(join(root, "iris", ".upload-3d4e5f", "staged"), { recursive: true });
    writeFileSync(join(root, "iris", ".current-777777"), "1.2.");
    cpSync(join(MODELS_DIR, "wine"), join(root, ".trash-888888"), { recursive: true });
    const store = new ModelStore(root, 2);
    expect(store.scan()).toEqual(["iris"]);
    expect(tree(root)).toEqual(["iris/", "iris/1.0.0/", "iris/1.0.0/model.json", "iris/1.0.0/model.onnx", "iris/1.1.0/", "iris/1.1.0/model.json", "iris/1.1.0/model.onnx", "iris/CURRENT"]);
  });

  test("beside a flat model, version folders are an interrupted first upload: removed, the flat files kept", () => {
    const root = modelsDirCopy(["iris"]);
    cpSync(join(MODELS_DIR, "iris"), join(root, "iris", "1.0.0"), { recursive: true });
    mkdirSync(join(root, "iris", "notes"));
    new ModelStore(root, 2).scan();
    expect(tree(join(root, "iris"))).toEqual(["model.json", "model.onnx", "notes/"]);
  });

  test("a model folder that is a symbolic link is served, and nothing inside it is cleaned", () => {
    const outside = tempDir();
    cpSync(join(MODELS_DIR, "iris"), join(outside, "iris", "1.0.0"), { recursive: true });
    mkdirSync(join(outside, "iris", "2.0.0"));
    mkdirSync(join(outside, "iris", ".upload-abc"));
    writeFileSync(join(outside, "iris", "CURRENT"), "1.0.0\n");
    const root = tempDir();
    symlinkSync(join(outside, "iris"), join(root, "iris"), "dir");
    const store = new ModelStore(root, 2);
    expect(store.scan()).toEqual(["iris"]);
    expect(store.layout("iris")).toMatchObject({ linked: true, current: "1.0.0" });
    expect(readdirSync(join(outside, "iris")).sort()).toEqual([".upload-abc", "1.0.0", "2.0.0", "CURRENT"]);
  });
});
