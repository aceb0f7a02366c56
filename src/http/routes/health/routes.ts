/** Liveness and readiness, for load balancers and orchestrators. Both public and cheap under any load. */
import { createRoute, z } from "@hono/zod-openapi";
import { problemResponses } from "../../openapi.ts";
import { ModelStatus } from "../../schemas.ts";

const Health = z
  .object({
    status: z.literal("ok"),
    version: z.string().openapi({ description: "Server version", example: "0.1.0" }),
    uptime_seconds: z.number().openapi({ example: 12.5 }),
    models: z.array(ModelStatus),
  })
  .openapi("Health");

const Readiness = z.object({ status: z.literal("ready"), models: z.array(ModelStatus) }).openapi("Readiness");

export const health = createRoute({
  method: "get",
  path: "/health",
  tags: ["Health"],
  summary: "Liveness: the process answers",
  description: "Always 200 while the process runs, with each model's state. Reads state only: nothing runs.",
  responses: { 200: { description: "Alive", content: { "application/json": { schema: Health } } } },
});

export const readiness = createRoute({
  method: "get",
  path: "/readiness",
  tags: ["Health"],
  summary: "Readiness: every model is loaded and shows it can infer",
  description:
    "200 when every model is loaded and has passed a real inference within the last second (or, for a text model that is " +
    "generating, completes its next decode step). Probes share one such check per model per second, so a flood of them costs " +
    "the models nothing. 503 naming each model that is loading or failed.",
  responses: {
    200: { description: "Ready to serve", content: { "application/json": { schema: Readiness } } },
    ...problemResponses(503),
  },
});
