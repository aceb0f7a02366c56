import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type { AppEnv } from "../../env.ts";
import { createRouter } from "../../openapi.ts";
import { classifyHandlers } from "./handlers.ts";
import { classifyRoutes } from "./routes.ts";

export type ClassifyOptions = {
  /** DEFAULT_IMAGE_MODEL; unset: the first image-classification model. */
  defaultModel: string | undefined;
  /** IMAGE_MAX_BYTES: per file and per request. */
  maxBytes: number;
  /** IMAGE_MAX_FILES: images one request may carry. */
  maxFiles: number;
};

export function classifyRouter(catalog: ModelCatalog, options: ClassifyOptions) {
  const routes = classifyRoutes(options);
  const handlers = classifyHandlers(catalog, options);
  return createRouter<AppEnv>().openapi(routes.byName, handlers.byName).openapi(routes.byDefault, handlers.byDefault);
}
