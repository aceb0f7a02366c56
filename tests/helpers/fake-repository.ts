/**
 * A fake model catalog for route tests: the real manifests (read from models/), a fake model that answers
 * deterministically without ONNX, and per-model states and failures the test can set.
 */
import { join } from "node:path";
import { EngineError } from "../../src/engine/errors.ts";
import { readManifestOf, type ModelManifest, type ModelTask, type TabularManifest, type TextGenerationManifest } from "../../src/engine/registry/manifest.ts";
import { readinessOf, type ModelCatalog, type ModelState, type ModelStatus, type Readiness, type ServedModel, type ServedModelOf } from "../../src/engine/registry/repository.ts";
import type { Feeds } from "../../src/engine/execution/session-pool.ts";
import type { RowResult } from "../../src/engine/scheduling/row-batcher.ts";
import type { Classification, Predictions, TabularModel } from "../../src/engine/tasks/tabular/classifier.ts";
import type { GenerationEvent, GenerationParams, StreamStats, TextModel, TokenLogprob } from "../../src/engine/tasks/text/generator.ts";

export const MODELS_DIR = join(import.meta.dir, "..", "..", "models");
const TINY_LM = join(import.meta.dir, "..", "fixtures", "tiny-lm");

/** The real manifest of a tabular model under models/. */
export function realManifest(name: string): TabularManifest {
  return readManifestOf(join(MODELS_DIR, name), "tabular-classification");
}

/** The tiny test language model's real manifest (a text-generation model with a 64-token context). */
export function tinyLmManifest(): TextGenerationManifest {
  return readManifestOf(TINY_LM, "text-generation");
}

/**
 * The fake's answer for one row: class = index of the largest feature, modulo the label count;
 * that label gets 0.75, the others share 0.25 (exact in binary floating point for 2, 3 or 5 labels).
 */
export function fakeClassify(labels: readonly string[], row: readonly number[]): Classification {
  const cls = row.indexOf(Math.max(...row)) % labels.length;
  const probabilities = labels.map((_, i) => (i === cls ? 0.75 : 0.25 / (labels.length - 1)));
  return { class: cls, label: labels[cls]!, probabilities };
}

export class FakeTabularModel implements TabularModel {
  readonly task = "tabular-classification" as const;
  /** Rows of every predict() call, in call order. */
  readonly calls: number[][][] = [];
  /** When set, predict() rejects with it. */
  failWith: unknown;
  /** When set, selfTest() rejects with it. */
  selfTestFailure: unknown;
  closed = false;

  constructor(readonly manifest: TabularManifest) {}

  /** The graph a tabular manifest describes: float32 [batch, features] in, [batch, labels] out. */
  get signature() {
    const { onnx, features, labels } = this.manifest;
    return {
      inputs: [{ name: onnx.input, type: "float32", shape: ["batch", features.length] }],
      outputs: [{ name: onnx.output, type: "float32", shape: ["batch", labels.length] }],
    };
  }

  /** The fake's answers as the graph's output tensor, for float32 rows of the manifest's width. */
  async infer(feeds: Feeds): Promise<RowResult> {
    const tensor = feeds[this.manifest.onnx.input];
    const width = this.manifest.features.length;
    if (!tensor || !(tensor.data instanceof Float32Array)) throw new EngineError("invalid_input", `input '${this.manifest.onnx.input}' is missing or not float32`);
    const rows = Array.from({ length: tensor.data.length / width }, (_, i) => Array.from((tensor.data as Float32Array).subarray(i * width, (i + 1) * width)));
    const { predictions } = await this.predict(rows);
    const data = Float32Array.from(predictions.flatMap((p) => p.probabilities));
    return { outputs: { [this.manifest.onnx.output]: { type: "float32", dims: [rows.length, this.manifest.labels.length], data } }, timing: { queueMs: 0, inferenceMs: 0 } };
  }

  async predict(rows: readonly (readonly number[])[]): Promise<Predictions> {
    this.calls.push(rows.map((r) => [...r]));
    if (this.failWith !== undefined) throw this.failWith;
    return { predictions: rows.map((row) => fakeClassify(this.manifest.labels, row)), timing: { queueMs: 0, inferenceMs: 0 } };
  }

  async selfTest(): Promise<void> {
    if (this.selfTestFailure !== undefined) throw this.selfTestFailure;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  reset() {
    this.calls.length = 0;
    this.failWith = undefined;
    this.selfTestFailure = undefined;
    this.closed = false;
  }
}

/** A logprob entry for the fake's token `text`, with `alternatives` made-up alternatives. */
function fakeLogprob(text: string, alternatives: number): TokenLogprob {
  const bytes = [...new TextEncoder().encode(text)];
  return {
    token: text,
    bytes,
    logprob: -0.5,
    top: Array.from({ length: alternatives }, (_, i) => (i === 0 ? { token: text, bytes, logprob: -0.5 } : { token: `alt${i}`, bytes: [97, 108, 116, 48 + i], logprob: -1 - i })),
  };
}

/**
 * A text model without ONNX, for route tests: every generation's parameters are recorded, and it answers the
 * tokens " w0", " w1", ... up to maxTokens (finish "length"), one per event, with log-probabilities when asked and
 * the prompt's words as its tokens; a prompt counts one token per space-separated word.
 */
export class FakeTextModel implements TextModel {
  readonly task = "text-generation" as const;
  /** The parameters of every generate() call, in call order. */
  readonly calls: GenerationParams[] = [];
  /** When set, generate() rejects with it (before any event). */
  failWith: unknown;

  constructor(readonly manifest: TextGenerationManifest) {}

  async generate(params: GenerationParams): Promise<{ promptTokens: number; events: AsyncIterable<GenerationEvent> }> {
    this.calls.push(params);
    if (this.failWith !== undefined) throw this.failWith;
    const words = params.prompt.split(" ");
    const promptTokens = words.length;
    const count = params.fitToContext ? Math.min(params.maxTokens, this.manifest.context_length - promptTokens) : params.maxTokens;
    const alternatives = params.logprobs ?? 0;
    async function* events(): AsyncIterable<GenerationEvent> {
      if (params.logprobs !== undefined && params.promptLogprobs) {
        yield { type: "prompt", tokens: words.map((w, i) => ({ ...fakeLogprob(i === 0 ? w : ` ${w}`, i === 0 ? 0 : alternatives), ...(i === 0 ? { logprob: null } : {}) })) };
      }
      for (let index = 0; index < count; index++) {
        const text = ` w${index}`;
        yield { type: "token", text, index, ...(params.logprobs === undefined ? {} : { logprobs: [fakeLogprob(text, alternatives)] }) };
      }
      yield { type: "done", finishReason: "length", usage: { promptTokens, completionTokens: count, totalTokens: promptTokens + count } };
    }
    return { promptTokens, events: events() };
  }

  stats(): StreamStats {
    return { active: 0, queued: 0, steps: 0, prefills: 0 };
  }

  onStats(): () => void {
    return () => {};
  }

  async selfTest(): Promise<void> {}

  async close(): Promise<void> {}

  reset() {
    this.calls.length = 0;
    this.failWith = undefined;
  }
}

type Entry = { manifest: ModelManifest; state: ModelState; model: FakeTabularModel | FakeTextModel; error?: string };

function fakeModel(manifest: ModelManifest): FakeTabularModel | FakeTextModel {
  if (manifest.task === "text-generation") return new FakeTextModel(manifest);
  if (manifest.task === "tabular-classification") return new FakeTabularModel(manifest);
  throw new Error(`no fake for ${manifest.task} models`);
}

/** Implements what the HTTP layer needs of a repository, with the real repository's errors. */
export class FakeRepository implements ModelCatalog {
  private readonly entries = new Map<string, Entry>();
  /** Names passed to reload(), in order. */
  readonly reloads: string[] = [];
  /** When set, reload() rejects with it. */
  reloadFailure: unknown;
  revision = 0;

  constructor(private readonly initial: ModelManifest[] = [realManifest("iris"), realManifest("wine")]) {
    for (const manifest of initial) this.entries.set(manifest.name, { manifest, state: "ready", model: fakeModel(manifest) });
  }

  get names(): string[] {
    return [...this.entries.keys()];
  }

  manifest(name: string): ModelManifest | undefined {
    return this.entries.get(name)?.manifest;
  }

  /** Back to the state after construction: the first manifests, every model ready, no calls, no failures. */
  reset() {
    this.reloads.length = 0;
    this.reloadFailure = undefined;
    for (const manifest of this.initial) {
      const entry = this.entry(manifest.name);
      if (entry.manifest !== manifest) this.serve(manifest);
      entry.state = "ready";
      entry.error = undefined;
      entry.model.reset();
    }
  }

  /** Serves a new version of a model, as a reload that read `manifest` would. */
  serve(manifest: ModelManifest) {
    this.entries.set(manifest.name, { manifest, state: "ready", model: fakeModel(manifest) });
    this.revision++;
  }

  /** The fake tabular model behind a name, ready or not (for setting failures and reading calls). */
  model(name: string): FakeTabularModel {
    const model = this.entry(name).model;
    if (!(model instanceof FakeTabularModel)) throw new Error(`${name} is not a tabular model`);
    return model;
  }

  /** The fake text model behind a name. */
  textModel(name: string): FakeTextModel {
    const model = this.entry(name).model;
    if (!(model instanceof FakeTextModel)) throw new Error(`${name} is not a text model`);
    return model;
  }

  setState(name: string, state: ModelState, error?: string) {
    const entry = this.entry(name);
    entry.state = state;
    entry.error = error;
  }

  get<T extends ModelTask>(name: string, task: T): ServedModelOf<T>;
  get(name: string): ServedModel;
  get(name: string, task?: ModelTask): ServedModel {
    const entry = this.entry(name);
    if (entry.state !== "ready") {
      const why = entry.state === "failed" ? `failed to load: ${entry.error}` : "is still loading";
      throw new EngineError("not_ready", `model '${name}' ${why}`, entry.state === "loading" ? 1 : undefined);
    }
    if (task !== undefined && task !== entry.model.task) throw new EngineError("wrong_task", `model '${name}' is a ${entry.model.task} model, not a ${task} one`);
    return entry.model;
  }

  async reload(name: string): Promise<ModelStatus> {
    const entry = this.entry(name);
    this.reloads.push(name);
    if (this.reloadFailure !== undefined) throw this.reloadFailure;
    entry.state = "ready";
    entry.error = undefined;
    return this.statusOf(entry);
  }

  status(): ModelStatus[] {
    return [...this.entries.values()].map((e) => this.statusOf(e));
  }

  readiness(): Promise<Readiness> {
    const models = [...this.entries.values()].map((entry) => ({ status: this.statusOf(entry), ...(entry.state === "ready" ? { check: () => entry.model.selfTest() } : {}) }));
    return readinessOf(models, (error) => (error instanceof Error ? error.message : String(error)));
  }

  private entry(name: string): Entry {
    const entry = this.entries.get(name);
    if (!entry) throw new EngineError("model_not_found", `no model named '${name}'; available: ${[...this.entries.keys()].join(", ")}`);
    return entry;
  }

  private statusOf(entry: Entry): ModelStatus {
    const { name, version, task } = entry.manifest;
    return { name, version, task, state: entry.state, ...(entry.error ? { error: entry.error } : {}) };
  }
}
