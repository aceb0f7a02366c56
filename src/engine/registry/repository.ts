/**
 * The model repository: one folder per model under a root folder. Manifests are read at construction (so routes
 * can be built from them); ONNX sessions load in the background, each model warmed by one real inference.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { EngineError } from "../errors.ts";
import { exampleRow, ManifestError, readManifest, type ModelManifest, type TabularManifest } from "./manifest.ts";
import { SessionPool, type Feeds } from "../execution/session-pool.ts";
import { TabularClassifier, type BatchingOptions, type TabularModel } from "../tasks/tabular/classifier.ts";
import { TextGenerator, type TextGeneratorOptions, type TextModel } from "../tasks/text/generator.ts";

export type EngineOptions = {
  /** Tabular models: sessions (worker threads) per model. */
  sessionsPerModel: number;
  intraOpThreads: number;
  /**
   * Tabular models whose full batch runs in at most this many milliseconds run on the event loop, with one
   * session, instead of in worker threads (see SessionPoolOptions.inline). 0: always in workers.
   */
  inlineInferenceMaxMs: number;
  batching: BatchingOptions;
  /** Text-generation models: one worker each, with continuous batching. */
  generation: Omit<TextGeneratorOptions, "intraOpThreads">;
};

export type ModelState = "loading" | "ready" | "failed";

/** A loaded model, whatever its task. */
export type ServedModel = TabularModel | TextModel;

/** What the HTTP layer needs of a repository; tests of routes may bring a fake. */
export type ModelCatalog = Pick<ModelRepository, "root" | "manifests" | "get" | "reload" | "status" | "selfTest">;

export type ModelStatus = {
  name: string;
  version: string;
  task: ModelManifest["task"];
  state: ModelState;
  error?: string;
  /** Text-generation models: generations running (sharing decode steps) and waiting for a slot. */
  generations?: { active: number; queued: number };
};

export type Readiness = { ready: boolean; models: ModelStatus[] };

/**
 * Ready when there are models and every one passes its self-test (a real inference) now; a loaded model that
 * fails it is reported failed. A model not loaded (loading or failed) is reported as it stands.
 */
export async function readiness(entries: { status: ModelStatus; model?: { selfTest(): Promise<void> } }[]): Promise<Readiness> {
  const models = await Promise.all(
    entries.map(async ({ status, model }) => {
      if (!model) return status;
      try {
        await model.selfTest();
        return status;
      } catch (error) {
        return { ...status, state: "failed" as const, error: `self-test failed: ${error instanceof Error ? error.message : error}` };
      }
    }),
  );
  return { ready: models.length > 0 && models.every((m) => m.state === "ready"), models };
}

type Entry = { dir: string; manifest: ModelManifest; state: ModelState; model?: ServedModel; error?: string };

export class ModelRepository {
  private readonly entries = new Map<string, Entry>();

  /** Reads every `<root>/<name>/model.json`; throws a ManifestError on the first bad or duplicate one. */
  constructor(
    readonly root: string,
    private readonly options: EngineOptions,
  ) {
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new ManifestError(`model folder ${root} does not exist`);
    for (const name of readdirSync(root).sort()) {
      const dir = join(root, name);
      if (!statSync(dir).isDirectory() || !existsSync(join(dir, "model.json"))) continue;
      const manifest = readManifest(dir);
      // As in Triton and KServe, the folder is the model's name: one name to look for on disk and in the API.
      if (manifest.name !== name) throw new ManifestError(`${dir}: the manifest names the model '${manifest.name}', but its folder is '${name}'`);
      this.entries.set(manifest.name, { dir, manifest, state: "loading" });
    }
  }

  /** Every manifest, by model name. */
  get manifests(): ModelManifest[] {
    return [...this.entries.values()].map((e) => e.manifest);
  }

  manifest(name: string): ModelManifest {
    return this.entry(name).manifest;
  }

  /** Loads and warms every model; failures are recorded per model (see status()), never thrown. */
  async loadAll(): Promise<void> {
    await Promise.all(
      [...this.entries.values()].map(async (entry) => {
        try {
          entry.model = await this.load(entry.dir, entry.manifest);
          entry.state = "ready";
        } catch (error) {
          entry.state = "failed";
          entry.error = error instanceof Error ? error.message : String(error);
        }
      }),
    );
  }

  /** The loaded model; throws model_not_found or not_ready. */
  get(name: string): ServedModel {
    const entry = this.entry(name);
    if (!entry.model) {
      const why = entry.state === "failed" ? `failed to load: ${entry.error}` : "is still loading";
      throw new EngineError("not_ready", `model '${name}' ${why}`, entry.state === "loading" ? 1 : undefined);
    }
    return entry.model;
  }

  /**
   * Loads the model again from disk and swaps it in once warmed. Requests already queued finish on the old
   * sessions, which close after them. If the new copy fails to load, the old one keeps serving.
   */
  async reload(name: string): Promise<ModelStatus> {
    const entry = this.entry(name);
    const manifest = readManifest(entry.dir);
    if (manifest.name !== name) throw new ManifestError(`${entry.dir}: the manifest now names '${manifest.name}', not '${name}'`);
    const model = await this.load(entry.dir, manifest);
    const previous = entry.model;
    Object.assign(entry, { manifest, model, state: "ready", error: undefined });
    void previous?.close();
    return this.statusOf(entry);
  }

  status(): ModelStatus[] {
    return [...this.entries.values()].map((e) => this.statusOf(e));
  }

  /** Every model's status after a real inference now (see readiness). */
  async selfTest(): Promise<Readiness> {
    return readiness([...this.entries.values()].map((entry) => ({ status: this.statusOf(entry), model: entry.model })));
  }

  async close() {
    await Promise.all([...this.entries.values()].map((e) => e.model?.close()));
  }

  private entry(name: string): Entry {
    const entry = this.entries.get(name);
    if (!entry) throw new EngineError("model_not_found", `no model named '${name}'; available: ${[...this.entries.keys()].join(", ")}`);
    return entry;
  }

  private statusOf(entry: Entry): ModelStatus {
    const { name, version, task } = entry.manifest;
    const generations = entry.model?.task === "text-generation" ? entry.model.stats() : undefined;
    return {
      name,
      version,
      task,
      state: entry.state,
      ...(entry.error ? { error: entry.error } : {}),
      ...(generations ? { generations: { active: generations.active, queued: generations.queued } } : {}),
    };
  }

  private async load(dir: string, manifest: ModelManifest): Promise<ServedModel> {
    if (manifest.task === "text-generation") {
      return TextGenerator.create(dir, manifest, { ...this.options.generation, intraOpThreads: this.options.intraOpThreads });
    }
    const { sessionsPerModel, intraOpThreads, inlineInferenceMaxMs, batching } = this.options;
    const pool = await SessionPool.create(join(dir, "model.onnx"), {
      size: sessionsPerModel,
      intraOpThreads,
      ...(inlineInferenceMaxMs > 0 ? { inline: { probe: fullBatch(manifest, batching.maxBatchSize), maxMs: inlineInferenceMaxMs } } : {}),
    });
    try {
      const model = new TabularClassifier(manifest, pool, this.options.batching);
      await model.selfTest();
      return model;
    } catch (error) {
      await pool.close();
      throw error;
    }
  }
}

/** The largest run a tabular model gets: a full batch of the manifest's example rows. */
function fullBatch(manifest: TabularManifest, rows: number): Feeds {
  const example = exampleRow(manifest);
  const data = new Float32Array(rows * example.length);
  for (let i = 0; i < rows; i++) data.set(example, i * example.length);
  return { [manifest.onnx.input]: { type: "float32", dims: [rows, example.length], data } };
}
