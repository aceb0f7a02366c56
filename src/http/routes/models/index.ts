import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type { AppEnv } from "../../env.ts";
import { createRouter } from "../../openapi.ts";
import { modelsHandlers } from "./handlers.ts";
import { modelsRoutes } from "./routes.ts";

export type ModelsOptions = {
  /** MODEL_UPLOAD_MAX_BYTES: the largest upload (all files together). */
  uploadMaxBytes: number;
};

export function modelsRouter(catalog: ModelCatalog, options: ModelsOptions) {
  const routes = modelsRoutes(options.uploadMaxBytes);
  const handlers = modelsHandlers(catalog);
  return createRouter<AppEnv>()
    .openapi(routes.create, handlers.create)
    .openapi(routes.update, handlers.update)
    .openapi(routes.rollback, handlers.rollback)
    .openapi(routes.remove, handlers.remove)
    .openapi(routes.reload, handlers.reload);
}
