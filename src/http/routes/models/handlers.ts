import type { RouteHandler } from "@hono/zod-openapi";
import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type * as routes from "./routes.ts";

export function modelsHandlers(catalog: ModelCatalog) {
  const reload: RouteHandler<typeof routes.reload> = async (c) => c.json(await catalog.reload(c.req.valid("param").name), 200);
  return { reload };
}
