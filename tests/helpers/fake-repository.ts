/**
 * A fake model catalog for route tests: the real manifests (read from models/), a fake model that answers
 * deterministically without ONNX, and per-model states and failures the test can set.
 */
import { join } from "node:path";
import { EngineError } from "../../src/engine/errors.ts";
import { compareVersions, ModelManifest, readManifestOf, type ModelTask, type TabularManifest, type TextGenerationManifest } from "../../src/engine/registry/manifest.ts";
import type { ModelFiles } from "../../src/engine/registry/model-store.ts";
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

type Entry = {
  manifest: ModelManifest;
  state: ModelState;
  model: FakeTabularModel | FakeTextModel;
  error?: string;
  /** Kept versions, ascending, once an upload or rollback has changed them (else not reported). */
  versions?: string[];
};

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
  /** Uploads, rollbacks and deletions, in order: "create <name>", "update <name> <version>", "rollback <name>", "remove <name>". */
  readonly changes: string[] = [];
  /** When set, create(), update() and rollback() reject with it after checking their input (a version that fails to load, say). */
  loadFailure: unknown;
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
    this.changes.length = 0;
    this.loadFailure = undefined;
    this.history.clear();
    for (const name of this.names) if (!this.initial.some((m) => m.name === name)) this.entries.delete(name);
    for (const manifest of this.initial) {
      if (!this.entries.has(manifest.name)) this.serve(manifest);
      delete this.entry(manifest.name).versions;
      const entry = this.entry(manifest.name);
      if (entry.manifest !== manifest) this.serve(manifest);
      entry.state = "ready";
      entry.error = undefined;
      entry.model.reset();
    }
  }

  /** Every manifest served per model, oldest first (for rollback). */
  private readonly history = new Map<string, ModelManifest[]>();

  /** Serves a new version of a model, as a reload that read `manifest` would. */
  serve(manifest: ModelManifest, remember = true) {
    const versions = this.entries.get(manifest.name)?.versions;
    this.entries.set(manifest.name, { manifest, state: "ready", model: fakeModel(manifest), ...(versions ? { versions } : {}) });
    if (remember) this.history.set(manifest.name, [...(this.history.get(manifest.name) ?? []), manifest]);
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
    if (task !== undefined && task !== entry.model.task) throw new EngineError("wrong_task", `model '${name}' is for ${entry.model.task}, not ${task}`);
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

  /** Checks the upload as the real repository does (manifest, tokenizer), without ONNX: the manifest is served at once. */
  async create(files: ModelFiles): Promise<ModelStatus> {
    const manifest = uploadedManifest(files);
    if (this.entries.has(manifest.name)) throw new EngineError("conflict", `a model named '${manifest.name}' already exists; upload new versions of it instead`);
    this.changes.push(`create ${manifest.name}`);
    if (this.loadFailure !== undefined) throw this.loadFailure;
    this.serve(manifest);
    const entry = this.entry(manifest.name);
    entry.versions = [manifest.version];
    return this.statusOf(entry);
  }

  async update(name: string, files: ModelFiles): Promise<ModelStatus> {
    const entry = this.entry(name);
    const manifest = uploadedManifest(files);
    if (manifest.name !== name) throw new EngineError("invalid_input", `model.json: name is '${manifest.name}', but this upload is a version of '${name}'`);
    const versions = entry.versions ?? [entry.manifest.version];
    if (compareVersions(manifest.version, versions.at(-1)!) <= 0) throw new EngineError("conflict", `version ${manifest.version} of model '${name}' is not newer than every kept version (${versions.join(", ")})`);
    this.changes.push(`update ${name} ${manifest.version}`);
    if (this.loadFailure !== undefined) throw this.loadFailure;
    if (!this.history.has(name)) this.history.set(name, [entry.manifest]);
    this.serve(manifest);
    this.entry(name).versions = [...versions, manifest.version];
    return this.statusOf(this.entry(name));
  }

  /** Rolls back to the previous version uploaded through update() (the fake keeps their manifests). */
  async rollback(name: string): Promise<ModelStatus> {
    const entry = this.entry(name);
    const versions = entry.versions ?? [entry.manifest.version];
    const previous = this.history.get(name)?.at(-2);
    if (versions.length < 2 || !previous) throw new EngineError("conflict", `model '${name}' has no version before ${entry.manifest.version} to roll back to (kept: ${versions.join(", ")})`);
    this.changes.push(`rollback ${name}`);
    if (this.loadFailure !== undefined) throw this.loadFailure;
    this.history.get(name)!.pop();
    this.serve(previous, false);
    this.entry(name).versions = versions.slice(0, -1);
    return this.statusOf(this.entry(name));
  }

  async remove(name: string): Promise<void> {
    this.entry(name);
    this.changes.push(`remove ${name}`);
    this.entries.delete(name);
    this.history.delete(name);
    this.revision++;
  }

  status(): ModelStatus[];
  status(name: string): ModelStatus;
  status(name?: string): ModelStatus[] | ModelStatus {
    if (name !== undefined) return this.statusOf(this.entry(name));
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
    return { name, version, ...(entry.versions ? { versions: entry.versions } : {}), task, state: entry.state, ...(entry.error ? { error: entry.error } : {}) };
  }
}

/** The manifest of an upload, refused as the real repository refuses it (invalid_input naming the file). */
function uploadedManifest(files: ModelFiles): ModelManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(files["model.json"]));
  } catch (error) {
    throw new EngineError("invalid_input", `model.json: ${(error as Error).message}`);
  }
  const result = ModelManifest.safeParse(raw);
  if (!result.success) throw new EngineError("invalid_input", `model.json: ${result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`);
  const manifest = result.data;
  if (manifest.task === "text-generation" && !files["tokenizer.json"]) throw new EngineError("invalid_input", "tokenizer.json: a text-generation model needs its tokenizer");
  if (manifest.task !== "text-generation" && files["tokenizer.json"]) throw new EngineError("invalid_input", `tokenizer.json: a ${manifest.task} model takes no tokenizer`);
  return manifest;
}
