import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type { AppEnv } from "../../env.ts";
import { createRouter } from "../../openapi.ts";
import { inferenceProtocolHandlers } from "./handlers.ts";
import * as routes from "./routes.ts";

export function inferenceProtocolRouter(catalog: ModelCatalog, serverVersion: string) {
  const handlers = inferenceProtocolHandlers(catalog, serverVersion);
  const router = createRouter<AppEnv>().openapi(routes.server, handlers.server).openapi(routes.live, handlers.live).openapi(routes.ready, handlers.ready);
  for (const model of [routes.unversioned, routes.versioned]) {
    router.openapi(model.metadata, handlers.metadata).openapi(model.modelReady, handlers.modelReady).openapi(model.infer, handlers.infer);
  }
  return router;
}
