import type { RouteHandler } from "@hono/zod-openapi";
import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import { ProblemError, problemType } from "../../problem.ts";
import type * as routes from "./routes.ts";

export function healthHandlers(catalog: ModelCatalog, version: string, startedAt = performance.now()) {
  const health: RouteHandler<typeof routes.health> = (c) =>
    c.json({ status: "ok" as const, version, uptime_seconds: Math.round(performance.now() - startedAt) / 1000, models: catalog.status() }, 200);

  const readiness: RouteHandler<typeof routes.readiness> = async (c) => {
    const { ready, models } = await catalog.readiness();
    if (!ready) {
      const waiting = models.filter((m) => m.state !== "ready").map((m) => `${m.name} is ${m.state}${m.error ? ` (${m.error})` : ""}`);
      throw new ProblemError(503, "Not ready", waiting.join("; ") || "no models are configured", {
        type: problemType("not_ready"),
        headers: { "Retry-After": "1" },
      });
    }
    return c.json({ status: "ready" as const, models }, 200);
  };

  return { health, readiness };
}
