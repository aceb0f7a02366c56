/** The text-generation manifest: model.json of an LM. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManifestError, readManifest, readManifestOf } from "../../../../src/engine/registry/manifest.ts";
import { TINY_LM } from "../../../helpers/text-model.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function write(json: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "lm-manifest-"));
  dirs.push(dir);
  writeFileSync(join(dir, "model.json"), JSON.stringify(json));
  return dir;
}

const minimal = { name: "lm", version: "1.0.0", task: "text-generation", context_length: 128 };

describe("TextGenerationManifest", () => {
  test("the tiny fixture's manifest reads as a text-generation manifest", () => {
    const m = readManifestOf(TINY_LM, "text-generation");
    expect(m).toMatchObject({ name: "tiny-lm", task: "text-generation", tokenizer: "tokenizer.json", context_length: 64, eos_token: "<|endoftext|>" });
    expect(m.architecture).toMatchObject({ n_layer: 2, n_head: 2 });
  });

  test("defaults: tokenizer.json, no eos_token, empty description", () => {
    expect(readManifest(write(minimal))).toEqual({ ...minimal, task: "text-generation", tokenizer: "tokenizer.json", description: "" });
  });

  test("context_length must be a positive integer; the tokenizer a file in the folder", () => {
    for (const bad of [{ ...minimal, context_length: 0 }, { ...minimal, context_length: 1.5 }, { ...minimal, context_length: undefined }, { ...minimal, tokenizer: "../x.json" }, { ...minimal, eos_token: "" }]) {
      expect(() => readManifest(write(bad))).toThrow(ManifestError);
    }
  });

  test("readManifestOf refuses a manifest of another task", () => {
    expect(() => readManifestOf(TINY_LM, "tabular-classification")).toThrow("task is 'text-generation', expected 'tabular-classification'");
  });
});
