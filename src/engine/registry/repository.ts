/**
 * The model repository: one folder per model under a root folder (laid out as model-store.ts says), each model
 * loaded, warmed and served; reloaded from its files, given new versions, rolled back and deleted while it serves.
 * What the files say now is what the server serves: every route validates against the manifest of the version
 * being served, which every swap replaces.
 *
 * One bad model never stops the others: a manifest that cannot be read, a graph that does not load or a warm-up
 * that fails marks that model `failed` with the reason, and the rest serve.
 */
import { existsSync, realpathSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Logger } from "../../observability/logger.ts";
import { EngineError } from "../errors.ts";
import { SessionPool, type Feeds } from "../execution/session-pool.ts";
import { RowBatcher, type BatchingOptions } from "../scheduling/row-batcher.ts";
import { ImageClassifier, type ImageModel } from "../tasks/image/classifier.ts";
import { TabularClassifier, type TabularModel } from "../tasks/tabular/classifier.ts";
import { TextGenerator, type TextGeneratorOptions, type TextModel } from "../tasks/text/generator.ts";
import { compareVersions, exampleRow, ManifestError, readManifest, type ModelManifest, type ModelTask, type TabularManifest } from "./manifest.ts";
import { Liveness } from "./liveness.ts";
import { ModelStore, type Layout, type ModelFiles } from "./model-store.ts";

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
  /** MODEL_VERSIONS_KEPT: versions of a model kept on disk, the served one included (default 2). */
  versionsKept?: number;
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
  /** Versions kept on disk, ascending (the served one among them); rollback goes to the one before it. */
  versions?: string[];
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
  /**
   * A new model from its files, served once it has passed a real inference. Throws invalid_input naming the file
   * that is wrong, conflict when the name exists, load_failed when it does not load or run.
   */
  create(files: ModelFiles): Promise<ModelStatus>;
  /**
   * A new version of model `name`, swapped in once it has passed a real inference; the version before it is kept.
   * Throws as create() does, and conflict when the version is not newer than every kept one.
   */
  update(name: string, files: ModelFiles): Promise<ModelStatus>;
  /** Serves the kept version before the served one again, and removes the served one; conflict when there is none. */
  rollback(name: string): Promise<ModelStatus>;
  /** Stops serving model `name` once requests in flight on it have finished, and removes its files. */
  remove(name: string): Promise<void>;
  status(): ModelStatus[];
  /** One model's status; throws model_not_found. */
  status(name: string): ModelStatus;
  /** Ready when there are models and every one is loaded and shows it can infer (see Liveness). */
  readiness(): Promise<Readiness>;
}

/** The model a task's default routes use: `configured` (from the environment), else the first model of that task. */
export function defaultModelOf(catalog: Pick<ModelCatalog, "names" | "manifest">, task: ModelTask, configured: string | undefined): string | undefined {
  return configured ?? catalog.names.find((name) => catalog.manifest(name)?.task === task);
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
  /** The served version's folder (else the one last read). */
  dir: string;
  versions: string[];
  state: ModelState;
  manifest?: ModelManifest;
  model?: ServedModel;
  liveness?: Liveness;
  loadedAt?: number;
  error?: string;
  /** A reload waiting for its turn, which every reload asked for meanwhile joins. */
  queuedReload?: Promise<ModelStatus>;
};

/** How swapIn() finds, commits and reports a version. */
type Swap = {
  /** The folder to load, and the version its folder name says it is (versioned layout). */
  source: () => { dir: string; version?: string };
  /** Makes the loaded version current on disk, once it has passed its inference; returns its final folder. */
  commit?: () => Promise<string>;
  /** A failure marks a model that serves nothing failed (start and reload); uploads and rollbacks change nothing. */
  failsModel: boolean;
  /** A work folder to name its files from in reasons (an upload's "model.onnx"). */
  staged?: string;
};

export class ModelRepository implements ModelCatalog {
  private entries = new Map<string, Entry>();
  /** Absolute forms of the root, to take out of reasons shown to clients. */
  private readonly rootPrefixes: string[];
  private readonly store: ModelStore;
  /** Per model name, the end of the last operation asked for (load, upload, rollback, delete): they run one at a time. */
  private readonly turns = new Map<string, Promise<void>>();
  revision = 0;

  /**
   * Finds every model folder (see model-store.ts), removing what interrupted uploads and deletions left, and reads
   * each served version's manifest; one that cannot be read marks its model failed. Throws a ManifestError only
   * when the root itself is missing.
   */
  constructor(
    readonly root: string,
    private readonly options: EngineOptions,
    private readonly logger?: Logger,
  ) {
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new ManifestError(`model folder ${root} does not exist`);
    this.rootPrefixes = [...new Set([resolve(root), realpathSync(root)])].map((p) => p + "/");
    this.store = new ModelStore(resolve(root), options.versionsKept ?? 2, logger);
    for (const name of this.store.scan()) {
      const entry: Entry = { name, dir: this.store.folder(name), versions: [], state: "loading" };
      this.entries.set(name, entry);
      try {
        const { dir, current } = this.layout(entry);
        entry.dir = dir;
        entry.manifest = this.readManifest(entry.name, dir, current);
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
      throw new EngineError("wrong_task", `model '${name}' is for ${entry.model.task}, not ${task}`);
    }
    return entry.model;
  }

  /**
   * Reads the served version's manifest and graph again (CURRENT's version, or a flat model's files) and swaps the
   * new version in once it has passed a real inference; requests already queued finish on the old sessions, which
   * close after them. If the new version fails, the old one keeps serving (a model with none is marked failed) and
   * this rejects with load_failed and the reason.
   *
   * Single-flight: a reload asked for while another operation on the model runs does not start beside it; it
   * waits for one follow-up load that starts when that ends (so it sees files changed meanwhile), shared by every
   * reload asked for in the meantime.
   */
  reload(name: string): Promise<ModelStatus> {
    const entry = this.entries.get(name);
    if (!entry) return Promise.reject(this.notFound(name));
    if (entry.queuedReload) return entry.queuedReload;
    let started = false;
    const reload = this.inTurn(name, () => {
      started = true;
      entry.queuedReload = undefined;
      return this.reloadNow(name);
    });
    if (!started) entry.queuedReload = reload;
    return reload;
  }

  async create(files: ModelFiles): Promise<ModelStatus> {
    const staged = await this.store.stage(this.store.root, files);
    const { name, version } = staged.manifest;
    try {
      return await this.inTurn(name, async () => {
        if (this.entries.has(name)) throw new EngineError("conflict", `a model named '${name}' already exists; upload new versions of it instead`);
        const entry: Entry = { name, dir: staged.dir, versions: [version], state: "loading" };
        await this.swapIn(entry, { source: () => ({ dir: staged.dir }), commit: () => this.store.commitModel(name, staged), failsModel: false, staged: staged.dir });
        this.entries = new Map([...this.entries, [name, entry] as const].sort(([a], [b]) => (a < b ? -1 : 1)));
        this.revision++;
        return this.statusOf(entry);
      });
    } catch (error) {
      await this.store.discard(staged);
      throw error;
    }
  }

  update(name: string, files: ModelFiles): Promise<ModelStatus> {
    return this.inTurn(name, async () => {
      const entry = this.entry(name);
      const { versions } = this.writableLayout(entry);
      const staged = await this.store.stage(this.store.folder(name), files);
      try {
        const { manifest } = staged;
        if (manifest.name !== name) throw new EngineError("invalid_input", `model.json: name is '${manifest.name}', but this upload is a version of '${name}'`);
        const newest = versions.at(-1);
        if (newest !== undefined && compareVersions(manifest.version, newest) <= 0) {
          const why = versions.includes(manifest.version) ? `version ${manifest.version} of model '${name}' already exists` : `version ${manifest.version} is older than ${newest}`;
          throw new EngineError("conflict", `${why}: a new version must be newer than every kept version (${versions.join(", ")})`);
        }
        await this.swapIn(entry, { source: () => ({ dir: staged.dir }), commit: () => this.store.commitVersion(name, staged), failsModel: false, staged: staged.dir });
      } catch (error) {
        await this.store.discard(staged);
        throw error;
      }
      entry.versions = this.layout(entry).versions;
      return this.statusOf(entry);
    });
  }

  rollback(name: string): Promise<ModelStatus> {
    return this.inTurn(name, async () => {
      const entry = this.entry(name);
      const { current, versions } = this.writableLayout(entry);
      const previous = current === undefined ? undefined : versions.filter((v) => compareVersions(v, current) < 0).at(-1);
      if (current === undefined || previous === undefined) {
        throw new EngineError("conflict", `model '${name}' has no version before ${current ?? versions[0] ?? "its served one"} to roll back to (kept: ${versions.join(", ") || "none"})`);
      }
      const dir = this.store.versionDir(name, previous);
      const commit = async () => {
        await this.store.commitRollback(name, current, previous);
        return dir;
      };
      await this.swapIn(entry, { source: () => ({ dir, version: previous }), commit, failsModel: false });
      entry.versions = this.layout(entry).versions;
      return this.statusOf(entry);
    });
  }

  remove(name: string): Promise<void> {
    return this.inTurn(name, async () => {
      const entry = this.entry(name);
      this.writableLayout(entry);
      const trash = await this.store.moveAway(name);
      this.entries.delete(name);
      this.revision++;
      this.logger?.info({ model: name }, "model deleted");
      // Requests that already hold the model finish on it; closing waits for them.
      await entry.model?.close();
      await this.store.purge(trash);
    });
  }

  status(): ModelStatus[];
  status(name: string): ModelStatus;
  status(name?: string): ModelStatus[] | ModelStatus {
    if (name !== undefined) return this.statusOf(this.entry(name));
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

  /**
   * Runs `operation` once every operation asked for earlier on model `name` has ended (at once when none is
   * running), so two never change one model's files or sessions together.
   */
  private inTurn<T>(name: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.turns.get(name);
    const run = previous ? previous.then(operation) : operation();
    const ended = run.then(
      () => {},
      () => {},
    );
    this.turns.set(name, ended);
    void ended.then(() => {
      if (this.turns.get(name) === ended) this.turns.delete(name);
    });
    return run;
  }

  private reloadNow(name: string): Promise<ModelStatus> {
    const entry = this.entry(name);
    return this.swapIn(entry, {
      source: () => {
        const { dir, current } = this.layout(entry);
        return { dir, version: current };
      },
      failsModel: true,
    });
  }

  /**
   * The one way a version starts serving (start, reload, upload, rollback): it is loaded on sessions of its own and
   * must pass a real inference; then `commit` makes it current on disk; then it takes new requests, while requests
   * already queued finish on the old sessions, which close after them. If the new version fails, the old one keeps
   * serving and this rejects with load_failed and the reason.
   */
  private async swapIn(entry: Entry, swap: Swap): Promise<ModelStatus> {
    let model: ServedModel;
    try {
      const { dir, version } = swap.source();
      model = await this.load(dir, this.readManifest(entry.name, dir, version));
    } catch (error) {
      // A version already serving keeps serving: only a model with none is failed, and only by its own files.
      if (!entry.model && swap.failsModel) this.fail(entry, error);
      else this.logger?.error({ model: entry.name, err: error }, "new version failed to load; the served one (if any) is unchanged");
      throw new EngineError("load_failed", `model '${entry.name}' could not be loaded: ${this.publicReason(error, swap.staged)}`);
    }
    let dir = entry.dir;
    try {
      if (swap.commit) dir = await swap.commit();
    } catch (error) {
      await model.close();
      throw error;
    }
    const previous = entry.model;
    Object.assign(entry, { dir, manifest: model.manifest, model, liveness: new Liveness(model), loadedAt: Math.floor(Date.now() / 1000), state: "ready", error: undefined });
    if (!swap.commit) entry.versions = this.layout(entry).versions;
    this.revision++;
    this.logger?.info({ model: entry.name, version: model.manifest.version }, previous ? "model reloaded" : "model ready");
    // In-flight requests hold the previous model and finish on it; closing waits for them.
    void previous?.close();
    return this.statusOf(entry);
  }

  /** Where the model's served version is on disk; entry.versions follows it. */
  private layout(entry: Entry): Layout {
    const layout = this.store.layout(entry.name);
    entry.versions = layout.versions;
    return layout;
  }

  /** The layout of a model the API may change: a real folder in the models folder whose CURRENT can be read. */
  private writableLayout(entry: Entry): Layout {
    let layout: Layout;
    try {
      layout = this.layout(entry);
    } catch (error) {
      throw new EngineError("conflict", `model '${entry.name}' cannot be changed until its folder is fixed: ${this.publicReason(error)}`);
    }
    if (layout.linked) throw new EngineError("conflict", `model '${entry.name}' is a symbolic link in the models folder: it is served, but changed only on disk`);
    return layout;
  }

  /**
   * `<dir>/model.json`, which must name the folder's model (the folder is the name, as in Triton and KServe) and,
   * in a version's folder, that version.
   */
  private readManifest(name: string, dir: string, version?: string): ModelManifest {
    const manifest = readManifest(dir);
    const file = join(dir, "model.json");
    if (manifest.name !== name) throw new ManifestError(`${file}: the manifest names the model '${manifest.name}', but its folder is '${name}'`);
    if (version !== undefined && manifest.version !== version) throw new ManifestError(`${file}: the manifest says version ${manifest.version}, but its folder is ${version}`);
    return manifest;
  }

  private fail(entry: Entry, error: unknown) {
    entry.state = "failed";
    entry.error = this.publicReason(error);
    this.revision++;
    this.logger?.error({ model: entry.name, err: error }, "model failed to load");
  }

  /**
   * An error's message without the models folder's absolute path: clients see `iris/model.onnx`, logs the whole
   * path; an upload's files are named as uploaded (`model.onnx`).
   */
  private publicReason(error: unknown, staged?: string): string {
    let message = error instanceof Error ? error.message : String(error);
    if (staged) message = message.replaceAll(`${staged}/`, "");
    for (const prefix of this.rootPrefixes) message = message.replaceAll(prefix, "");
    return message;
  }

  private entry(name: string): Entry {
    const entry = this.entries.get(name);
    if (!entry) throw this.notFound(name);
    return entry;
  }

  private notFound(name: string): EngineError {
    return new EngineError("model_not_found", `no model named '${name}'; available: ${[...this.entries.keys()].join(", ")}`);
  }

  private statusOf(entry: Entry): ModelStatus {
    const generations = entry.model?.task === "text-generation" ? entry.model.stats() : undefined;
    return {
      name: entry.name,
      ...(entry.manifest ? { version: entry.manifest.version } : {}),
      versions: entry.versions,
      ...(entry.manifest ? { task: entry.manifest.task } : {}),
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
