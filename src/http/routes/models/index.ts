import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import { createRouter } from "../../openapi.ts";
import { modelsHandlers } from "./handlers.ts";
import * as routes from "./routes.ts";

export function modelsRouter(catalog: ModelCatalog) {
  return createRouter().openapi(routes.reload, modelsHandlers(catalog).reload);
}
