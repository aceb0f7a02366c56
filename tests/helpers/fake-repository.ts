/**
 * A fake model catalog for route tests: the real manifests (read from models/), a fake model that answers
 * deterministically without ONNX, and per-model states and failures the test can set.
 */
import { join } from "node:path";
import { EngineError } from "../../src/engine/errors.ts";
import { readManifestOf, type ModelManifest, type ModelTask, type TabularManifest } from "../../src/engine/registry/manifest.ts";
import type { ModelCatalog, ModelState, ModelStatus, Readiness, ServedModel, ServedModelOf } from "../../src/engine/registry/repository.ts";
import type { Classification, Predictions, TabularModel } from "../../src/engine/tasks/tabular/classifier.ts";

export const MODELS_DIR = join(import.meta.dir, "..", "..", "models");

/** The real manifest of a tabular model under models/. */
export function realManifest(name: string): TabularManifest {
  return readManifestOf(join(MODELS_DIR, name), "tabular-classification");
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

type Entry = { manifest: TabularManifest; state: ModelState; model: FakeTabularModel; error?: string };

/** Implements what the HTTP layer needs of a repository, with the real repository's errors. */
export class FakeRepository implements ModelCatalog {
  private readonly entries = new Map<string, Entry>();
  /** Names passed to reload(), in order. */
  readonly reloads: string[] = [];
  /** When set, reload() rejects with it. */
  reloadFailure: unknown;
  revision = 0;

  constructor(private readonly initial: TabularManifest[] = [realManifest("iris"), realManifest("wine")]) {
    for (const manifest of initial) this.entries.set(manifest.name, { manifest, state: "ready", model: new FakeTabularModel(manifest) });
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
  serve(manifest: TabularManifest) {
    this.entries.set(manifest.name, { manifest, state: "ready", model: new FakeTabularModel(manifest) });
    this.revision++;
  }

  /** The fake model behind a name, ready or not (for setting failures and reading calls). */
  model(name: string): FakeTabularModel {
    return this.entry(name).model;
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

  async readiness(): Promise<Readiness> {
    const models = await Promise.all(
      [...this.entries.values()].map(async (entry) => {
        const status = this.statusOf(entry);
        if (entry.state !== "ready") return status;
        try {
          await entry.model.selfTest();
          return status;
        } catch (error) {
          return { ...status, state: "failed" as const, error: `self-test failed: ${error instanceof Error ? error.message : error}` };
        }
      }),
    );
    return { ready: models.length > 0 && models.every((m) => m.state === "ready"), models };
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
