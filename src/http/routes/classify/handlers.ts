import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import { defaultModelOf, type ModelCatalog } from "../../../engine/registry/repository.ts";
import type { ImageInput, ImageModel } from "../../../engine/tasks/image/classifier.ts";
import type { AppEnv } from "../../env.ts";
import { recordTiming } from "../../middleware/timing.ts";
import { multipartForm, requireIdentityEncoding, unsupported } from "../../body.ts";
import { invalidFields, ProblemError, problemType } from "../../problem.ts";
import type { ClassifyOptions } from "./index.ts";
import type { ClassifyRoutes } from "./routes.ts";
import { DEFAULT_TOP_K, FILE_FIELD } from "./schemas.ts";

/** One uploaded image: its bytes, what errors call it, and the filename to echo back. */
type Upload = ImageInput & { filename: string | null };

const HOW = `send the image as multipart/form-data (a part named '${FILE_FIELD}': curl -F ${FILE_FIELD}=@digit.png) or as the raw body with Content-Type image/png, image/jpeg, image/gif, image/webp or application/octet-stream`;

export function classifyHandlers(catalog: ModelCatalog, options: ClassifyOptions) {
  const classify = async (c: Context<AppEnv>, name: string, topK: number | undefined) => {
    const model: ImageModel = catalog.get(name, "image-classification");
    const { uploads, batch } = await readUploads(c, options);
    const { results, timing } = await model.classify(uploads, topK ?? DEFAULT_TOP_K);
    c.set("model", model.manifest.name);
    recordTiming(c, "decode", timing.decodeMs);
    recordTiming(c, "queue", timing.queueMs);
    recordTiming(c, "inference", timing.inferenceMs);
    const ref = { model: model.manifest.name, version: model.manifest.version };
    const predictions = results.map((r, i) => ({ filename: uploads[i]!.filename, label: r.label, confidence: r.confidence, top_k: r.top_k, width: r.width, height: r.height }));
    return batch ? { ...ref, predictions } : { ...ref, ...predictions[0]! };
  };

  const byName: RouteHandler<ClassifyRoutes["byName"], AppEnv> = async (c) => c.json(await classify(c, c.req.valid("param").name, c.req.valid("query").top_k), 200);

  const byDefault: RouteHandler<ClassifyRoutes["byDefault"], AppEnv> = async (c) => {
    const name = defaultModelOf(catalog, "image-classification", options.defaultModel);
    if (!name) throw new ProblemError(404, "Model not found", "this server has no image-classification model", { type: problemType("model_not_found") });
    return c.json(await classify(c, name, c.req.valid("query").top_k), 200);
  };

  return { byName, byDefault };
}

/**
 * The images of a request: the `file` parts of a multipart form (a batch when there are several), or the raw body
 * when it is declared as an image, as application/octet-stream, or not at all. What the bytes are is decided later,
 * from the bytes.
 */
async function readUploads(c: Context<AppEnv>, limits: Pick<ClassifyOptions, "maxBytes" | "maxFiles">): Promise<{ uploads: Upload[]; batch: boolean }> {
  requireIdentityEncoding(c, HOW);
  const type = c.req.header("content-type")?.split(";")[0]!.trim().toLowerCase() ?? "";
  if (type === "multipart/form-data") return readForm(c, limits);
  if (type === "" || type.startsWith("image/") || type === "application/octet-stream") {
    const filename = dispositionFilename(c.req.header("content-disposition"));
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    return { uploads: [{ bytes, filename, label: filename ? `the body ('${filename}')` : "the body" }], batch: false };
  }
  // curl's --data-binary sends this type unless told otherwise.
  if (type === "application/x-www-form-urlencoded") throw unsupported(`The body is declared as a URL-encoded form, which cannot carry an image: ${HOW} (with curl --data-binary, add -H 'Content-Type: image/png').`);
  throw unsupported(`The body is '${type}', not an image: ${HOW}.`);
}

async function readForm(c: Context<AppEnv>, { maxBytes, maxFiles }: Pick<ClassifyOptions, "maxBytes" | "maxFiles">): Promise<{ uploads: Upload[]; batch: boolean }> {
  const form = await multipartForm(c, HOW);
  const parts = form.getAll(FILE_FIELD);
  if (parts.length === 0) {
    const others = [...new Set(Array.from(form.entries(), ([key]) => key))].map((k) => `'${k}'`);
    const has = others.length > 0 ? ` (it has ${others.join(", ")})` : "";
    throw invalidFields([{ path: FILE_FIELD, message: `the form has no '${FILE_FIELD}' part${has}; send each image as a part named '${FILE_FIELD}'` }]);
  }
  if (parts.length > maxFiles) {
    throw invalidFields([{ path: FILE_FIELD, message: `holds ${parts.length} files; at most ${maxFiles} may be sent at once` }]);
  }
  const texts = parts.flatMap((part, i) => (typeof part === "string" ? [i] : []));
  if (texts.length > 0) {
    throw invalidFields(
      texts.map((i) => ({ path: parts.length > 1 ? `${FILE_FIELD}.${i}` : FILE_FIELD, message: `is text, not a file: send the image's bytes as a file part (curl -F ${FILE_FIELD}=@digit.png)` })),
    );
  }
  const files = parts as File[];
  const uploads = await Promise.all(
    files.map(async (file, i) => {
      const filename = file.name || null;
      const label = files.length > 1 ? `file ${i + 1}${filename ? ` ('${filename}')` : ""}` : filename ? `file '${filename}'` : "the file";
      // The body limit bounds the whole request; a file is held to the same limit on its own.
      if (file.size > maxBytes) throw new ProblemError(413, "Content Too Large", `${label} is ${file.size} bytes; the most a file may have is ${maxBytes}.`, { type: problemType("too_large") });
      return { bytes: new Uint8Array(await file.arrayBuffer()), filename, label };
    }),
  );
  return { uploads, batch: uploads.length > 1 };
}

/** The filename a Content-Disposition header gives (RFC 6266: filename*, else filename), or null. */
export function dispositionFilename(header: string | undefined): string | null {
  if (!header) return null;
  const extended = /filename\*\s*=\s*(?:UTF-8|utf-8)'[^']*'([^;\s]+)/.exec(header)?.[1];
  if (extended) {
    try {
      return decodeURIComponent(extended);
    } catch {
      // Not percent-encoded as it says: fall back to the plain parameter.
    }
  }
  const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/.exec(header);
  const name = plain?.[1]?.replace(/\\(.)/g, "$1") ?? plain?.[2];
  return name || null;
}
