import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import { createRouter } from "../../openapi.ts";
import { modelsHandlers } from "./handlers.ts";
import * as routes from "./routes.ts";

export type ModelsOptions = {
  /** MODEL_UPLOAD_MAX_BYTES: the largest upload (all files together). */
  uploadMaxBytes: number;
};

export function modelsRouter(catalog: ModelCatalog, _options: ModelsOptions) {
  return createRouter().openapi(routes.reload, modelsHandlers(catalog).reload);
}
