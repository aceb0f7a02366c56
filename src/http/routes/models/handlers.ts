import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { ModelFiles, UploadFile } from "../../../engine/registry/model-store.ts";
import { UPLOAD_FILES } from "../../../engine/registry/model-store.ts";
import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type { AppEnv } from "../../env.ts";
import { multipartForm, unsupported } from "../../body.ts";
import { invalidFields, type FieldError } from "../../problem.ts";
import { modelObject } from "../../schemas.ts";
import type { ModelsRoutes } from "./routes.ts";

const REQUIRED: UploadFile[] = ["model.onnx", "model.json"];
const HOW = "send model.onnx, model.json and (text-generation models) tokenizer.json as files of a multipart/form-data body";

/**
 * The uploaded files, by name. Each wrong field is named: a missing file, an unknown field, a field sent twice or
 * sent as text; a body that is not multipart/form-data is 415, one that does not parse as such 400.
 */
async function uploadedFiles(c: Context<AppEnv>): Promise<ModelFiles> {
  const type = c.req.header("content-type") ?? "";
  if (!/^multipart\/form-data\s*;/i.test(type)) {
    const what = type ? `${type.split(";")[0]}` : "a body without Content-Type";
    throw unsupported(`This route takes model files, not ${what}: ${HOW}.`);
  }
  const form = await multipartForm(c, HOW);
  const errors: FieldError[] = [];
  for (const field of new Set(form.keys())) {
    const values = form.getAll(field);
    if (!(UPLOAD_FILES as readonly string[]).includes(field)) errors.push({ path: field, message: `is not a file this route takes; ${HOW}` });
    else if (values.length > 1) errors.push({ path: field, message: "was sent more than once" });
    else if (!(values[0] instanceof Blob)) errors.push({ path: field, message: `must be a file, not a text field (curl: -F '${field}=@${field}')` });
  }
  for (const field of REQUIRED) if (!form.has(field)) errors.push({ path: field, message: "is required" });
  if (errors.length > 0) throw invalidFields(errors);
  const files: ModelFiles = {};
  for (const field of UPLOAD_FILES) {
    const file = form.get(field);
    if (file instanceof Blob) files[field] = new Uint8Array(await file.arrayBuffer());
  }
  return files;
}

export function modelsHandlers(catalog: ModelCatalog) {
  const create: RouteHandler<ModelsRoutes["create"], AppEnv> = async (c) => {
    const { name } = await catalog.create(await uploadedFiles(c));
    return c.json(modelObject(catalog, name), 201, { Location: `/v1/models/${name}` });
  };

  const update: RouteHandler<ModelsRoutes["update"], AppEnv> = async (c) => {
    const { name } = c.req.valid("param");
    await catalog.update(name, await uploadedFiles(c));
    return c.json(modelObject(catalog, name), 200);
  };

  const rollback: RouteHandler<ModelsRoutes["rollback"], AppEnv> = async (c) => {
    const { name } = c.req.valid("param");
    await catalog.rollback(name);
    return c.json(modelObject(catalog, name), 200);
  };

  const remove: RouteHandler<ModelsRoutes["remove"], AppEnv> = async (c) => {
    const { name } = c.req.valid("param");
    await catalog.remove(name);
    return c.json({ id: name, object: "model" as const, deleted: true as const }, 200);
  };

  const reload: RouteHandler<ModelsRoutes["reload"], AppEnv> = async (c) => {
    const { name } = c.req.valid("param");
    await catalog.reload(name);
    return c.json(modelObject(catalog, name), 200);
  };

  return { create, update, rollback, remove, reload };
}
