/** Assembles the application: middleware order lives here and nowhere else. */
import { z } from "@hono/zod-openapi";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getPath } from "hono/utils/url";
import type { Config } from "./config.ts";
import { ConfigError } from "./config.ts";
import type { ModelCatalog } from "./engine/repository.ts";
import type { Logger } from "./lib/logger.ts";
import { authErrors, createRouter, jsonBodyErrors, problemResponses, requires } from "./lib/openapi.ts";
import { ProblemError, problemErrorHandler, problemResponse, problemType } from "./lib/problem.ts";
import { docsRouter } from "./routes/docs/index.ts";
import { healthRouter } from "./routes/health/index.ts";
import { modelsRouter } from "./routes/models/index.ts";
import { predictRouter } from "./routes/predict/index.ts";
import { Prediction, PredictionV2 } from "./routes/predict/predict.schemas.ts";
import pkg from "../package.json" with { type: "json" };

export type AppDeps = {
  config: Pick<Config, "DEFAULT_MODEL" | "MAX_BATCH_INSTANCES" | "BODY_LIMIT_BYTES">;
  repository: ModelCatalog;
  logger: Logger;
};

export const API_VERSIONS = ["1", "2"] as const;

/** `POST /predict` is versioned by the API-Version header: it routes as /v1/predict or /v2/predict. */
function versionedPath(request: Request): string {
  const path = getPath(request);
  if (path !== "/predict") return path;
  const version = request.headers.get("api-version")?.trim() ?? "1";
  return (API_VERSIONS as readonly string[]).includes(version) ? `/v${version}/predict` : path;
}

export function createApp({ config, repository, logger }: AppDeps) {
  const defaultModel = repository.manifests.find((m) => m.name === config.DEFAULT_MODEL);
  if (!defaultModel) {
    throw new ConfigError(`DEFAULT_MODEL=${config.DEFAULT_MODEL}: no such model in ${repository.root} (found ${repository.manifests.map((m) => m.name).join(", ") || "none"})`);
  }
  if (defaultModel.task !== "tabular-classification") throw new ConfigError(`DEFAULT_MODEL=${config.DEFAULT_MODEL}: not a tabular model`);

  const api = createRouter()
    .route("/", healthRouter(repository, pkg.version))
    .route("/", predictRouter(repository, defaultModel, config.MAX_BATCH_INSTANCES))
    .route("/", modelsRouter(repository));
  documentVersionedPredict(api);

  const app = new Hono({ getPath: versionedPath });
  app.use(
    bodyLimit({
      maxSize: config.BODY_LIMIT_BYTES,
      onError: (c) =>
        problemResponse(c, new ProblemError(413, "Content Too Large", `The request body is larger than ${config.BODY_LIMIT_BYTES} bytes.`)),
    }),
  );
  app.get("/", (c) => c.redirect("/docs"));
  app.route("/", api);
  // Reached only when API-Version names no version this server has.
  app.post("/predict", (c) => {
    throw new ProblemError(400, "Unsupported API version", `API-Version must be one of ${API_VERSIONS.join(", ")}; got '${c.req.header("api-version")}'.`, {
      type: problemType("unsupported_api_version"),
    });
  });
  app.route(
    "/",
    docsRouter(api, {
      title: "ONNX model server",
      version: pkg.version,
      description: "Predictions from ONNX models. Errors are RFC 9457 problem details (application/problem+json).",
    }),
  );

  app.notFound((c) => problemResponse(c, new ProblemError(404, "Not Found", `No route for ${c.req.method} ${c.req.path}.`)));
  app.onError(problemErrorHandler(logger));
  return app;
}

function documentVersionedPredict(api: ReturnType<typeof createRouter>) {
  api.openAPIRegistry.registerPath({
    method: "post",
    path: "/predict",
    tags: ["Predict"],
    ...requires("predict"),
    summary: "Classify one row, versioned by the API-Version header",
    description: "Without API-Version, or with `API-Version: 1`, this is POST /v1/predict; with `API-Version: 2`, POST /v2/predict.",
    request: {
      headers: z.object({ "API-Version": z.enum(API_VERSIONS).optional().openapi({ description: "1 (default) or 2", example: "2" }) }),
      body: {
        required: true,
        content: { "application/json": { schema: z.object({}).passthrough().openapi({ description: "The body of /v1/predict or /v2/predict" }) } },
      },
    },
    responses: {
      200: { description: "As /v1/predict or /v2/predict", content: { "application/json": { schema: z.union([Prediction, PredictionV2]) } } },
      ...problemResponses(...jsonBodyErrors, ...authErrors, 503),
    },
  });
}
