/**
 * The model repository: one folder per model under a root folder, each model loaded, warmed and served, and
 * reloaded from its files on demand. What the files say now is what the server serves: every route validates
 * against the manifest of the version being served, which a reload replaces.
 *
 * One bad model never stops the others: a manifest that cannot be read, a graph that does not load or a warm-up
 * that fails marks that model `failed` with the reason, and the rest serve.
 */
import { existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Logger } from "../../observability/logger.ts";
import { EngineError } from "../errors.ts";
import { SessionPool, type Feeds } from "../execution/session-pool.ts";
import { RowBatcher, type BatchingOptions } from "../scheduling/row-batcher.ts";
import { ImageClassifier, type ImageModel } from "../tasks/image/classifier.ts";
import { TabularClassifier, type TabularModel } from "../tasks/tabular/classifier.ts";
import { TextGenerator, type TextGeneratorOptions, type TextModel } from "../tasks/text/generator.ts";
import { exampleRow, ManifestError, readManifest, type ModelManifest, type ModelTask, type TabularManifest } from "./manifest.ts";
import { Liveness } from "./liveness.ts";

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
  /** Image models: the most pixels an image may have, read from its header before it is decoded. */
  images: { maxPixels: number };
  /** Text-generation models: one worker each, with continuous batching. */
  generation: Omit<TextGeneratorOptions, "intraOpThreads">;
};

export type ModelState = "loading" | "ready" | "failed";

/** A loaded model, whatever its task. */
export type ServedModel = TabularModel | ImageModel | TextModel;
/** A loaded model of one task. */
export type ServedModelOf<T extends ModelTask> = Extract<ServedModel, { task: T }>;

export type ModelStatus = {
  name: string;
  /** The served version's (else the last manifest read); absent when no manifest could be read. */
  version?: string;
  task?: ModelTask;
  state: ModelState;
  /** Why the model is not ready, with file names relative to the models folder. */
  error?: string;
  /** Text-generation models: generations running (sharing decode steps) and waiting for a slot. */
  generations?: { active: number; queued: number };
  /** When the served version was loaded, in Unix seconds. */
  loaded_at?: number;
};

export type Readiness = { ready: boolean; models: ModelStatus[] };

/** What the HTTP layer needs of a repository; route tests may bring a fake. */
export interface ModelCatalog {
  /** Grows by one whenever a model's served manifest changes (a load or a reload): for caches built from manifests. */
  readonly revision: number;
  /** Every model's name, in folder order. */
  readonly names: string[];
  /** The manifest of the version being served, else the last one read; undefined when none could be read. */
  manifest(name: string): ModelManifest | undefined;
  /** The served model; throws model_not_found, not_ready, or wrong_task when `task` is given and differs. */
  get<T extends ModelTask>(name: string, task: T): ServedModelOf<T>;
  get(name: string): ServedModel;
  /** Reads the model's files again and swaps the new version in; throws load_failed with the reason. */
  reload(name: string): Promise<ModelStatus>;
  status(): ModelStatus[];
  /** Ready when there are models and every one is loaded and shows it can infer (see Liveness). */
  readiness(): Promise<Readiness>;
}

/**
 * Ready when there are models and every one is ready and passes its check (models without one, not loaded, count
 * as they stand); a check that fails reports its model failed, with `reason(error)`.
 */
export async function readinessOf(models: { status: ModelStatus; check?: () => Promise<void> }[], reason: (error: unknown) => string): Promise<Readiness> {
  const checked = await Promise.all(
    models.map(async ({ status, check }) => {
      if (!check) return status;
      try {
        await check();
        return status;
      } catch (error) {
        return { ...status, state: "failed" as const, error: `self-test failed: ${reason(error)}` };
      }
    }),
  );
  return { ready: checked.length > 0 && checked.every((m) => m.state === "ready"), models: checked };
}

type Entry = {
  name: string;
  dir: string;
  state: ModelState;
  manifest?: ModelManifest;
  model?: ServedModel;
  liveness?: Liveness;
  loadedAt?: number;
  error?: string;
  /** The load running now, which concurrent reloads join, and the one queued after it. */
  loading?: Promise<ModelStatus>;
  followUp?: Promise<ModelStatus>;
};

export class ModelRepository implements ModelCatalog {
  private readonly entries = new Map<string, Entry>();
  /** Absolute forms of the root, to take out of reasons shown to clients. */
  private readonly rootPrefixes: string[];
  revision = 0;

  /**
   * Finds every `<root>/<name>/model.json` and reads it; a manifest that cannot be read marks its model failed.
   * Throws a ManifestError only when the root itself is missing.
   */
  constructor(
    readonly root: string,
    private readonly options: EngineOptions,
    private readonly logger?: Logger,
  ) {
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new ManifestError(`model folder ${root} does not exist`);
    this.rootPrefixes = [...new Set([resolve(root), realpathSync(root)])].map((p) => p + "/");
    for (const name of readdirSync(root).sort()) {
      const dir = join(resolve(root), name);
      if (!statSync(dir).isDirectory() || !existsSync(join(dir, "model.json"))) continue;
      const entry: Entry = { name, dir, state: "loading" };
      this.entries.set(name, entry);
      try {
        entry.manifest = this.readManifest(entry);
      } catch (error) {
        this.fail(entry, error);
      }
    }
  }

  /** Every model's name, in folder order. */
  get names(): string[] {
    return [...this.entries.keys()];
  }

  manifest(name: string): ModelManifest | undefined {
    return this.entries.get(name)?.manifest;
  }

  /** Loads and warms every model whose manifest was read; failures are recorded per model (see status()), never thrown. */
  async loadAll(): Promise<void> {
    await Promise.all([...this.entries.values()].filter((e) => e.state === "loading").map((e) => this.reload(e.name).catch(() => {})));
  }

  get<T extends ModelTask>(name: string, task: T): ServedModelOf<T>;
  get(name: string): ServedModel;
  get(name: string, task?: ModelTask): ServedModel {
    const entry = this.entry(name);
    if (!entry.model) {
      const why = entry.state === "failed" ? `failed to load: ${entry.error}` : "is still loading";
      throw new EngineError("not_ready", `model '${name}' ${why}`, entry.state === "loading" ? 1 : undefined);
    }
    if (task !== undefined && entry.model.task !== task) {
      throw new EngineError("wrong_task", `model '${name}' is a ${entry.model.task} model, not a ${task} one`);
    }
    return entry.model;
  }

  /**
   * Reads the model's manifest and graph again and swaps the new version in once it has passed a real inference;
   * requests already queued finish on the old sessions, which close after them. If the new version fails, the old
   * one keeps serving (a model with none is marked failed) and this rejects with load_failed and the reason.
   *
   * Single-flight: a reload asked for while one runs does not start another load beside it; it waits for one
   * follow-up load that starts when the running one ends (so it sees files changed meanwhile), shared by every
   * reload asked for in the meantime. At most two versions of a model are ever loading or loaded besides the
   * served one.
   */
  reload(name: string): Promise<ModelStatus> {
    const entry = this.entry(name);
    if (!entry.loading) return this.startLoad(entry);
    entry.followUp ??= entry.loading
      .catch(() => {})
      .then(() => {
        entry.followUp = undefined;
        return this.startLoad(entry);
      });
    return entry.followUp;
  }

  status(): ModelStatus[] {
    return [...this.entries.values()].map((e) => this.statusOf(e));
  }

  readiness(): Promise<Readiness> {
    const models = [...this.entries.values()].map((entry) => {
      const liveness = entry.liveness;
      return { status: this.statusOf(entry), ...(liveness ? { check: () => liveness.check() } : {}) };
    });
    return readinessOf(models, (error) => this.publicReason(error));
  }

  async close() {
    await Promise.all([...this.entries.values()].map((e) => e.model?.close()));
  }

  private startLoad(entry: Entry): Promise<ModelStatus> {
    entry.loading = this.swapIn(entry).finally(() => (entry.loading = undefined));
    return entry.loading;
  }

  private async swapIn(entry: Entry): Promise<ModelStatus> {
    let model: ServedModel;
    try {
      const manifest = this.readManifest(entry);
      model = await this.load(entry.dir, manifest);
    } catch (error) {
      // A version already serving keeps serving: only a model with none is failed.
      if (!entry.model) this.fail(entry, error);
      else this.logger?.error({ model: entry.name, err: error }, "reload failed; the previous version keeps serving");
      throw new EngineError("load_failed", `model '${entry.name}' could not be loaded: ${this.publicReason(error)}`);
    }
    const previous = entry.model;
    Object.assign(entry, { manifest: model.manifest, model, liveness: new Liveness(model), loadedAt: Math.floor(Date.now() / 1000), state: "ready", error: undefined });
    this.revision++;
    this.logger?.info({ model: entry.name, version: model.manifest.version }, previous ? "model reloaded" : "model ready");
    // In-flight requests hold the previous model and finish on it; closing waits for them.
    void previous?.close();
    return this.statusOf(entry);
  }

  /** `<dir>/model.json`, which must name the folder's model (the folder is the name, as in Triton and KServe). */
  private readManifest(entry: Entry): ModelManifest {
    const manifest = readManifest(entry.dir);
    if (manifest.name !== entry.name) {
      throw new ManifestError(`${join(entry.dir, "model.json")}: the manifest names the model '${manifest.name}', but its folder is '${entry.name}'`);
    }
    return manifest;
  }

  private fail(entry: Entry, error: unknown) {
    entry.state = "failed";
    entry.error = this.publicReason(error);
    this.revision++;
    this.logger?.error({ model: entry.name, err: error }, "model failed to load");
  }

  /** An error's message without the models folder's absolute path: clients see `iris/model.onnx`, logs the whole path. */
  private publicReason(error: unknown): string {
    let message = error instanceof Error ? error.message : String(error);
    for (const prefix of this.rootPrefixes) message = message.replaceAll(prefix, "");
    return message;
  }

  private entry(name: string): Entry {
    const entry = this.entries.get(name);
    if (!entry) throw new EngineError("model_not_found", `no model named '${name}'; available: ${[...this.entries.keys()].join(", ")}`);
    return entry;
  }

  private statusOf(entry: Entry): ModelStatus {
    const generations = entry.model?.task === "text-generation" ? entry.model.stats() : undefined;
    return {
      name: entry.name,
      ...(entry.manifest ? { version: entry.manifest.version, task: entry.manifest.task } : {}),
      state: entry.state,
      ...(entry.error ? { error: entry.error } : {}),
      ...(generations ? { generations: { active: generations.active, queued: generations.queued } } : {}),
      ...(entry.loadedAt ? { loaded_at: entry.loadedAt } : {}),
    };
  }

  private async load(dir: string, manifest: ModelManifest): Promise<ServedModel> {
    if (manifest.task === "text-generation") {
      return TextGenerator.create(dir, manifest, { ...this.options.generation, intraOpThreads: this.options.intraOpThreads });
    }
    const { sessionsPerModel, intraOpThreads, inlineInferenceMaxMs, batching } = this.options;
    // Only a tabular model is small enough to run on the event loop; images are decoded there too.
    const inline = manifest.task === "tabular-classification" && inlineInferenceMaxMs > 0;
    const pool = await SessionPool.create(join(dir, "model.onnx"), {
      size: sessionsPerModel,
      intraOpThreads,
      ...(inline ? { inline: { probe: fullBatch(manifest, batching.maxBatchSize), maxMs: inlineInferenceMaxMs } } : {}),
    });
    try {
      const batcher = new RowBatcher(pool, batching);
      const model = manifest.task === "tabular-classification" ? new TabularClassifier(manifest, batcher) : new ImageClassifier(manifest, batcher, this.options.images);
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
