import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type { AppEnv } from "../../env.ts";
import { createRouter } from "../../openapi.ts";
import { openAIHandlers, type OpenAIOptions } from "./handlers.ts";
import { openAIRoutes } from "./routes.ts";

export function openAIRouter(catalog: ModelCatalog, options: OpenAIOptions) {
  const routes = openAIRoutes(options);
  const handlers = openAIHandlers(catalog, options);
  return createRouter<AppEnv>()
    .openapi(routes.list, handlers.list)
    .openapi(routes.retrieve, handlers.retrieve)
    .openapi(routes.completions, handlers.completions)
    .openapi(routes.chat, handlers.chat);
}
