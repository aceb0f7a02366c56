/**
 * A fake model catalog for route tests: the real manifests (read from models/), a fake model that answers
 * deterministically without ONNX, and per-model states and failures the test can set.
 */
import { join } from "node:path";
import { EngineError } from "../../src/engine/errors.ts";
import { readManifestOf, type ModelManifest, type TabularManifest } from "../../src/engine/registry/manifest.ts";
import { readiness, type ModelCatalog, type ModelState, type ModelStatus, type Readiness } from "../../src/engine/registry/repository.ts";
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
  readonly root = "fake-models";
  private readonly entries = new Map<string, Entry>();
  /** Names passed to reload(), in order. */
  readonly reloads: string[] = [];

  constructor(manifests: TabularManifest[] = [realManifest("iris"), realManifest("wine")]) {
    for (const manifest of manifests) this.entries.set(manifest.name, { manifest, state: "ready", model: new FakeTabularModel(manifest) });
  }

  get manifests(): ModelManifest[] {
    return [...this.entries.values()].map((e) => e.manifest);
  }

  /** Back to the state after construction: every model ready, no calls, no failures. */
  reset() {
    this.reloads.length = 0;
    for (const entry of this.entries.values()) {
      entry.state = "ready";
      entry.error = undefined;
      entry.model.reset();
    }
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

  get(name: string): TabularModel {
    const entry = this.entry(name);
    if (entry.state !== "ready") {
      const why = entry.state === "failed" ? `failed to load: ${entry.error}` : "is still loading";
      throw new EngineError("not_ready", `model '${name}' ${why}`, entry.state === "loading" ? 1 : undefined);
    }
    return entry.model;
  }

  async reload(name: string): Promise<ModelStatus> {
    const entry = this.entry(name);
    this.reloads.push(name);
    entry.state = "ready";
    entry.error = undefined;
    return this.statusOf(entry);
  }

  status(): ModelStatus[] {
    return [...this.entries.values()].map((e) => this.statusOf(e));
  }

  selfTest(): Promise<Readiness> {
    return readiness([...this.entries.values()].map((entry) => ({ status: this.statusOf(entry), model: entry.state === "ready" ? entry.model : undefined })));
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
