import { defaultModelOf, type ModelCatalog } from "../../../engine/registry/repository.ts";
import type { AppEnv } from "../../env.ts";
import { createRouter } from "../../openapi.ts";
import { generateHandlers, type GenerateOptions } from "./handlers.ts";
import { generateRoutes } from "./routes.ts";

export function generateRouter(catalog: ModelCatalog, options: GenerateOptions) {
  const routes = generateRoutes(options, defaultModelOf(catalog, "text-generation", options.defaultModel));
  const handlers = generateHandlers(catalog, options);
  return createRouter<AppEnv>().openapi(routes.get, handlers.get).openapi(routes.post, handlers.post);
}
