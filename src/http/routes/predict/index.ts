import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type { AppEnv } from "../../env.ts";
import { createRouter } from "../../openapi.ts";
import { predictHandlers } from "./handlers.ts";
import { predictRoutes } from "./routes.ts";

export function predictRouter(catalog: ModelCatalog, defaultModel: string, maxInstances: number) {
  const manifest = () => {
    const m = catalog.manifest(defaultModel);
    return m?.task === "tabular-classification" ? m : undefined;
  };
  const routes = predictRoutes(manifest, defaultModel, maxInstances);
  const handlers = predictHandlers(catalog, defaultModel);
  return createRouter<AppEnv>()
    .openapi(routes.v1, handlers.v1)
    .openapi(routes.batch, handlers.batch)
    .openapi(routes.byName, handlers.byName)
    .openapi(routes.v2, handlers.v2)
    .openapi(routes.versioned, handlers.versioned);
}
