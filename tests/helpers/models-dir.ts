/**
 * Model folders for tests. Tests point the engine at a temporary folder holding links to models/iris and
 * models/wine, so what else lands in models/ (a model being trained, say) cannot change what they test.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
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

/** A models folder holding the given real models (links to models/<name>). */
export function modelsDirWith(names: string[] = ["iris", "wine"]): string {
  const dir = tempDir("onnx-serve-models-");
  for (const name of names) symlinkSync(join(MODELS_DIR, name), join(dir, name), "dir");
  return dir;
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
