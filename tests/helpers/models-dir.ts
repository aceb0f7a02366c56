/**
 * Model folders for tests. Tests point the engine at a temporary folder holding links to models/iris and
 * models/wine, so what else lands in models/ (a model being trained, say) cannot change what they test; tests
 * that change models (uploads, deletions) get copies, so models/ itself is never written to.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MODELS_DIR, realManifest } from "./fake-repository.ts";

const made: string[] = [];
process.once("exit", () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A new empty temporary folder, removed when the process exits. */
export function tempDir(prefix = "onnx-serve-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** A models folder holding the given real models (links to models/<name>) and fixtures (links to their folders). */
export function modelsDirWith(names: string[] = ["iris", "wine"], fixtures: Record<string, string> = {}): string {
  const dir = tempDir("onnx-serve-models-");
  for (const name of names) symlinkSync(join(MODELS_DIR, name), join(dir, name), "dir");
  for (const [name, from] of Object.entries(fixtures)) symlinkSync(from, join(dir, name), "dir");
  return dir;
}

/** A models folder holding copies of the given real models (models/<name>, or a fixture's folder), which tests may change. */
export function modelsDirCopy(names: string[] = ["iris", "wine"], fixtures: Record<string, string> = {}): string {
  const dir = tempDir("onnx-serve-models-");
  for (const name of names) cpSync(join(MODELS_DIR, name), join(dir, name), { recursive: true });
  for (const [name, from] of Object.entries(fixtures)) cpSync(from, join(dir, name), { recursive: true });
  return dir;
}

/**
 * The multipart form of an upload: `manifest` as model.json, and the graph (and tokenizer) of the model folder
 * `from`, unless `files` replaces or (with undefined) leaves out one.
 */
export function uploadForm(manifest: unknown, from: string, files: Record<string, string | Uint8Array | undefined> = {}): FormData {
  const form = new FormData();
  const parts: Record<string, string | Uint8Array | undefined> = { "model.onnx": readFileSync(join(from, "model.onnx")), "model.json": JSON.stringify(manifest), ...files };
  for (const [field, content] of Object.entries(parts)) if (content !== undefined) form.append(field, new Blob([content]), field);
  return form;
}

/**
 * Adds a copy of the iris model named `name` whose model.onnx is a named pipe: whoever loads it blocks until
 * release() writes the real bytes into the pipe. A deterministic "still loading" window, no sleeps.
 */
export function addGatedIris(dir: string, name = "iris-gated"): { release: () => Promise<void> } {
  const modelDir = join(dir, name);
  mkdirSync(modelDir);
  writeFileSync(join(modelDir, "model.json"), JSON.stringify({ ...realManifest("iris"), name }));
  execFileSync("mkfifo", [join(modelDir, "model.onnx")]);
  let released: Promise<void> | undefined;
  return {
    // Opening the pipe for writing waits for the reader (the loading session), then hands it the model.
    release: () => (released ??= Bun.file(join(MODELS_DIR, "iris", "model.onnx")).bytes().then((bytes) => writeFile(join(modelDir, "model.onnx"), bytes))),
  };
}
