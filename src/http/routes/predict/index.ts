import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type { TabularManifest } from "../../../engine/registry/manifest.ts";
import type { AppEnv } from "../../env.ts";
import { createRouter } from "../../openapi.ts";
import { predictHandlers } from "./handlers.ts";
import { predictRoutes } from "./routes.ts";

export function predictRouter(repository: ModelCatalog, defaultModel: TabularManifest, maxInstances: number) {
  const routes = predictRoutes(defaultModel, maxInstances);
  const handlers = predictHandlers(repository, defaultModel.name);
  return createRouter<AppEnv>()
    .openapi(routes.v1, handlers.v1)
    .openapi(routes.batch, handlers.batch)
    .openapi(routes.byName, handlers.byName)
    .openapi(routes.v2, handlers.v2);
}
