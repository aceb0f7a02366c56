import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import { createRouter } from "../../openapi.ts";
import { healthHandlers } from "./handlers.ts";
import * as routes from "./routes.ts";

export function healthRouter(catalog: ModelCatalog, version: string) {
  const handlers = healthHandlers(catalog, version);
  return createRouter().openapi(routes.health, handlers.health).openapi(routes.readiness, handlers.readiness);
}
