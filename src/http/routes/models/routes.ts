/** Model administration: reload from disk. */
import { createRoute } from "@hono/zod-openapi";
import { authErrors, problemResponses, requires } from "../../openapi.ts";
import { ModelName, ModelStatus } from "../../schemas.ts";

export const reload = createRoute({
  method: "post",
  path: "/v1/models/{name}/reload",
  tags: ["Models"],
  ...requires("admin"),
  summary: "Reload a model from disk",
  description:
    "Reads model.json and model.onnx again, warms the new version with one inference, then swaps it in: from then on every " +
    "route validates against the new manifest. Requests already queued finish on the old version. If loading fails, the old " +
    "version keeps serving and the answer is 422 with the reason. Reloads of one model run one at a time: one asked for while " +
    "another runs waits for a single follow-up load, shared with every reload asked for meanwhile.",
  request: { params: ModelName },
  responses: {
    200: { description: "The model as now served", content: { "application/json": { schema: ModelStatus } } },
    ...problemResponses(...authErrors, 404, 422, 500),
  },
});
