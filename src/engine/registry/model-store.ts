/**
 * The models folder on disk: where each model's versions live, and every change to it made so that a crash at any
 * moment leaves the state before the change or the state after it, never a half model.
 *
 * ```
 * MODELS_DIR/
 *   iris/model.json, model.onnx                 flat: one version, as the bundled models ship (never uploaded to)
 *   wine/CURRENT                                versioned: the served version ("1.2.0\n")
 *   wine/1.1.0/model.json, model.onnx           one folder per kept version (text models add their tokenizer)
 *   wine/1.2.0/...
 *   .upload-*, .trash-*, .current-* (anywhere)  work in progress: an upload, a removal, a CURRENT being written
 * ```
 *
 * A version folder appears by one rename of a complete, fsynced folder; CURRENT is replaced by one rename of a
 * fsynced file; a removal starts by one rename out of the way. So at start, whatever is left over is known for
 * what it is and removed: work-in-progress names; version folders newer than CURRENT (an upload or a rollback
 * interrupted before or after its CURRENT was written); version folders beside a flat model (its first upload,
 * interrupted before CURRENT existed). Model folders that are symbolic links are served but never written to.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { copyFile, mkdir, open, rename, rm } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Logger } from "../../observability/logger.ts";
import { EngineError } from "../errors.ts";
import { compareVersions, ManifestError, MODEL_NAME, readManifest, VERSION, type ModelManifest } from "./manifest.ts";

/** The file naming a versioned model's served version. */
export const CURRENT = "CURRENT";

/** The files an upload may carry, by name. */
export const UPLOAD_FILES = ["model.onnx", "model.json", "tokenizer.json"] as const;
export type UploadFile = (typeof UPLOAD_FILES)[number];
/** A model's files as uploaded: model.json and model.onnx, and a text model's tokenizer. */
export type ModelFiles = Partial<Record<UploadFile, Uint8Array>>;

const WORK_PREFIXES = [".upload-", ".trash-", ".current-"];

/** Where a model's served version lives and which versions are kept. */
export type Layout = {
  /** The served version's folder. */
  dir: string;
  /** CURRENT's version; undefined for a flat model. */
  current?: string;
  /** Versions on disk, ascending (a flat model's is its manifest's, when it can be read). */
  versions: string[];
  /** The model's folder is a symbolic link: served, never written to. */
  linked: boolean;
};

/** An upload written to a folder of its own, not yet part of any model. */
export type Staged = { dir: string; manifest: ModelManifest; work: string };

export class ModelStore {
  /** The models folder, absolute. */
  readonly root: string;

  constructor(
    root: string,
    private readonly versionsKept: number,
    private readonly logger?: Logger,
  ) {
    this.root = root;
  }

  /** The folder of model `name`; throws invalid_input for a name that could leave the models folder. */
  folder(name: string): string {
    if (!MODEL_NAME.test(name)) throw new EngineError("invalid_input", `'${name}' is not a model name: 1 to 63 lower-case letters, digits, '.', '_' and '-', starting with a letter or digit`);
    return join(this.root, name);
  }

  /**
   * Every model's name (a folder with a CURRENT or a model.json), sorted; leftovers of interrupted changes are
   * removed on the way, inside real folders only.
   */
  scan(): string[] {
    const names: string[] = [];
    for (const entry of readdirSync(this.root).sort()) {
      const path = join(this.root, entry);
      if (isWork(entry)) {
        this.removeLeftover(path, "an interrupted upload or removal");
        continue;
      }
      if (!MODEL_NAME.test(entry) || !statSync(path, { throwIfNoEntry: false })?.isDirectory()) continue;
      const hasCurrent = existsSync(join(path, CURRENT));
      if (!hasCurrent && !existsSync(join(path, "model.json"))) continue;
      if (!lstatSync(path).isSymbolicLink()) this.clean(path, hasCurrent);
      names.push(entry);
    }
    return names;
  }

  /** Where `name`'s served version is, and its kept versions; throws a ManifestError when CURRENT is not usable. */
  layout(name: string): Layout {
    const folder = this.folder(name);
    const linked = lstatSync(folder, { throwIfNoEntry: false })?.isSymbolicLink() ?? false;
    const current = readCurrent(folder);
    if (current === undefined) {
      let versions: string[] = [];
      try {
        versions = [readManifest(folder).version];
      } catch {
        // A flat manifest that cannot be read has no version; loading it reports why.
      }
      return { dir: folder, versions, linked };
    }
    const versions = versionFolders(folder);
    if (!versions.includes(current)) throw new ManifestError(`${join(folder, CURRENT)}: names version ${current}, which has no folder`);
    return { dir: join(folder, current), current, versions, linked };
  }

  /** The folder of a kept version of `name`. */
  versionDir(name: string, version: string): string {
    return join(this.folder(name), version);
  }

  /**
   * Writes an upload's files, each fsynced, into a work folder in `parent` (the models folder for a new model, the
   * model's folder for a new version), and reads its manifest. Throws invalid_input naming the file that is wrong.
   */
  async stage(parent: string, files: ModelFiles): Promise<Staged> {
    const work = join(parent, `.upload-${randomBytes(6).toString("hex")}`);
    const dir = join(work, "staged");
    await mkdir(dir, { recursive: true });
    try {
      for (const file of UPLOAD_FILES) {
        const bytes = files[file];
        if (bytes) await writeDurably(join(dir, file), bytes);
      }
      let manifest: ModelManifest;
      try {
        manifest = readManifest(dir);
      } catch (error) {
        throw new EngineError("invalid_input", (error as Error).message.replaceAll(`${dir}/`, ""));
      }
      if (manifest.task === "text-generation") {
        if (!files["tokenizer.json"]) throw new EngineError("invalid_input", "tokenizer.json: a text-generation model needs its tokenizer");
        // The manifest may name its tokenizer otherwise; the upload's field is always tokenizer.json.
        if (manifest.tokenizer !== "tokenizer.json") await rename(join(dir, "tokenizer.json"), join(dir, manifest.tokenizer));
      } else if (files["tokenizer.json"]) {
        throw new EngineError("invalid_input", `tokenizer.json: a ${manifest.task} model takes no tokenizer`);
      }
      await syncDir(dir);
      return { dir, manifest, work };
    } catch (error) {
      await this.discard({ work });
      throw error;
    }
  }

  /** Removes a staged upload that was not committed. */
  async discard(staged: Pick<Staged, "work">): Promise<void> {
    await rm(staged.work, { recursive: true, force: true });
  }

  /**
   * Makes a staged upload the new model `name` (version folder and CURRENT inside the work folder, then one rename
   * into place); returns the version's folder. Throws conflict if anything named `name` appeared meanwhile.
   */
  async commitModel(name: string, staged: Staged): Promise<string> {
    const folder = this.folder(name);
    const { version } = staged.manifest;
    await rename(staged.dir, join(staged.work, version));
    await this.writeCurrent(staged.work, version);
    if (lstatSync(folder, { throwIfNoEntry: false })) throw new EngineError("conflict", `the models folder already holds something named '${name}'`);
    await rename(staged.work, folder);
    await syncDir(this.root);
    return join(folder, version);
  }

  /**
   * Makes a staged upload the served version of `name`: its folder renamed into place, then CURRENT written (the
   * commit), then versions beyond MODEL_VERSIONS_KEPT removed, oldest first. A flat model's files become its first
   * version's folder first (copied, so the flat model stays whole until CURRENT exists). Returns the new folder.
   */
  async commitVersion(name: string, staged: Staged): Promise<string> {
    const folder = this.folder(name);
    const { version } = staged.manifest;
    if (readCurrent(folder) === undefined) await this.versionFlat(folder);
    const dir = join(folder, version);
    await rename(staged.dir, dir);
    await rm(staged.work, { recursive: true, force: true });
    await this.writeCurrent(folder, version);
    await this.removeFlatFiles(folder);
    const versions = versionFolders(folder);
    for (const old of versions.slice(0, Math.max(0, versions.length - this.versionsKept))) await this.removeVersion(folder, old);
    return dir;
  }

  /** Makes `to` the served version of `name` (CURRENT written), then removes the version it replaces, `from`. */
  async commitRollback(name: string, from: string, to: string): Promise<void> {
    const folder = this.folder(name);
    await this.writeCurrent(folder, to);
    await this.removeVersion(folder, from);
  }

  /**
   * Takes model `name` out of the models folder by one rename, so it is gone at once even if the deletion that
   * follows is interrupted; returns where it went, for purge().
   */
  async moveAway(name: string): Promise<string> {
    const trash = join(this.root, `.trash-${randomBytes(6).toString("hex")}`);
    await rename(this.folder(name), trash);
    await syncDir(this.root);
    return trash;
  }

  /** Deletes what moveAway() moved. */
  async purge(trash: string): Promise<void> {
    await rm(trash, { recursive: true, force: true });
  }

  /** A flat model's files copied into the folder of its version (by one rename of a complete copy). */
  private async versionFlat(folder: string) {
    const manifest = readManifest(folder);
    const target = join(folder, manifest.version);
    // A folder of that version beside a flat model is what an interrupted first upload left.
    await rm(target, { recursive: true, force: true });
    const work = join(folder, `.upload-${randomBytes(6).toString("hex")}`);
    await mkdir(work);
    for (const file of flatFiles(manifest)) {
      await copyFile(join(folder, file), join(work, file));
      await syncFile(join(work, file));
    }
    await syncDir(work);
    await rename(work, target);
  }

  /** A flat model's files, once CURRENT makes them unused. */
  private async removeFlatFiles(folder: string) {
    if (!existsSync(join(folder, "model.json"))) return;
    let files = ["model.json", "model.onnx"];
    try {
      files = flatFiles(readManifest(folder));
    } catch {
      // Without a readable manifest, the two files every model has.
    }
    // The manifest last: while it exists, a flat model's files are known.
    for (const file of files.reverse()) await rm(join(folder, file), { force: true });
  }

  /** Writes CURRENT durably: a fsynced temporary file renamed over it, then the folder fsynced. */
  private async writeCurrent(folder: string, version: string) {
    const temporary = join(folder, `.current-${randomBytes(6).toString("hex")}`);
    await writeDurably(temporary, new TextEncoder().encode(`${version}\n`));
    await rename(temporary, join(folder, CURRENT));
    await syncDir(folder);
  }

  /** Removes one version's folder: renamed out of the way first, so a crash leaves a leftover, not half a version. */
  private async removeVersion(folder: string, version: string) {
    const trash = join(folder, `.trash-${randomBytes(6).toString("hex")}`);
    await rename(join(folder, version), trash);
    await rm(trash, { recursive: true, force: true });
  }

  /** Removes what interrupted changes left in a model's folder. */
  private clean(folder: string, hasCurrent: boolean) {
    let current: string | undefined;
    try {
      current = hasCurrent ? readCurrent(folder) : undefined;
    } catch {
      // A CURRENT that names no version fails its model when loaded; its folders are left as they are.
      return;
    }
    for (const entry of readdirSync(folder)) {
      const path = join(folder, entry);
      if (isWork(entry)) this.removeLeftover(path, "an interrupted upload or removal");
      else if (VERSION.test(entry) && statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
        // Beside a flat model: an interrupted first upload. Newer than CURRENT: an upload that never became current.
        if (!hasCurrent) this.removeLeftover(path, "a version never made current");
        else if (current !== undefined && compareVersions(entry, current) > 0) this.removeLeftover(path, "a version never made current, or rolled back from");
      }
    }
  }

  private removeLeftover(path: string, what: string) {
    this.logger?.warn({ path }, `removing ${what}`);
    rmSync(path, { recursive: true, force: true });
  }
}

const isWork = (entry: string) => WORK_PREFIXES.some((p) => entry.startsWith(p));

/** The version CURRENT names, or undefined when there is no CURRENT; a ManifestError when it names no version. */
function readCurrent(folder: string): string | undefined {
  const file = join(folder, CURRENT);
  if (!existsSync(file)) return undefined;
  const version = readFileSync(file, "utf8").trim();
  if (!VERSION.test(version)) throw new ManifestError(`${file}: '${version.slice(0, 40)}' is not a version (MAJOR.MINOR.PATCH)`);
  return version;
}

/** The version folders of a model's folder, ascending. */
function versionFolders(folder: string): string[] {
  return readdirSync(folder)
    .filter((entry) => VERSION.test(entry) && statSync(join(folder, entry), { throwIfNoEntry: false })?.isDirectory())
    .sort(compareVersions);
}

function flatFiles(manifest: ModelManifest): string[] {
  return ["model.json", "model.onnx", ...(manifest.task === "text-generation" ? [manifest.tokenizer] : [])];
}

/** Writes `bytes` to `path` and fsyncs it before returning. */
async function writeDurably(path: string, bytes: Uint8Array) {
  const handle = await open(path, "wx");
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncFile(path: string) {
  const handle = await open(path, "r+");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A rename is durable once its folder is fsynced. */
async function syncDir(path: string) {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
