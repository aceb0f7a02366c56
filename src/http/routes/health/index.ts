/** Liveness and readiness, for load balancers and orchestrators. */
import { createRoute, z } from "@hono/zod-openapi";
import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import { createRouter, problemResponses } from "../../openapi.ts";
import { ProblemError, problemType } from "../../problem.ts";
import { ModelStatus } from "../models/index.ts";

const Health = z
  .object({
    status: z.literal("ok"),
    version: z.string().openapi({ description: "Server version", example: "0.1.0" }),
    uptime_seconds: z.number().openapi({ example: 12.5 }),
    models: z.array(ModelStatus),
  })
  .openapi("Health");

const Readiness = z.object({ status: z.literal("ready"), models: z.array(ModelStatus) }).openapi("Readiness");

const healthRoute = createRoute({
  method: "get",
  path: "/health",
  tags: ["Health"],
  summary: "Liveness: the process answers",
  description: "Always 200 while the process runs, with each model's state.",
  responses: { 200: { description: "Alive", content: { "application/json": { schema: Health } } } },
});

const readinessRoute = createRoute({
  method: "get",
  path: "/readiness",
  tags: ["Health"],
  summary: "Readiness: every model is loaded and answers a test inference",
  responses: {
    200: { description: "Ready to serve", content: { "application/json": { schema: Readiness } } },
    ...problemResponses(503),
  },
});

export function healthRouter(repository: ModelCatalog, version: string, startedAt = performance.now()) {
  return createRouter()
    .openapi(healthRoute, (c) =>
      c.json({ status: "ok" as const, version, uptime_seconds: Math.round(performance.now() - startedAt) / 1000, models: repository.status() }, 200),
    )
    .openapi(readinessRoute, async (c) => {
      const { ready, models } = await repository.selfTest();
      if (!ready) {
        const waiting = models.filter((m) => m.state !== "ready").map((m) => `${m.name} is ${m.state}${m.error ? ` (${m.error})` : ""}`);
        throw new ProblemError(503, "Not ready", waiting.join("; ") || "no models are configured", {
          type: problemType("not_ready"),
          headers: { "Retry-After": "1" },
        });
      }
      return c.json({ status: "ready" as const, models }, 200);
    });
}
