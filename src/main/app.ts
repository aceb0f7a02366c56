/** Assembles the application: middleware order lives here and nowhere else. */
import { z } from "@hono/zod-openapi";
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { requestId } from "hono/request-id";
import { getPath } from "hono/utils/url";
import type { Config } from "./config.ts";
import { ConfigError } from "./config.ts";
import type { ModelCatalog } from "../engine/registry/repository.ts";
import type { AppEnv } from "../http/env.ts";
import type { Logger } from "../observability/logger.ts";
import { authErrors, createRouter, jsonBodyErrors, problemResponses, requires, scopeLookup, securitySchemes } from "../http/openapi.ts";
import { accessLog } from "../http/middleware/access-log.ts";
import { apiKeyAuth, type KeyStore } from "../http/middleware/api-key.ts";
import { rateLimit, type RateLimitStore } from "../http/middleware/rate-limit.ts";
import { secureHeaders } from "../http/middleware/secure-headers.ts";
import { timing } from "../http/middleware/timing.ts";
import { clientPath, ProblemError, problemErrorHandler, problemResponse, problemType } from "../http/problem.ts";
import { docsRouter } from "../http/routes/docs/index.ts";
import { generateRouter } from "../http/routes/generate/index.ts";
import { openAIErrors } from "../http/middleware/error-shape/openai.ts";
import { openAIRouter } from "../http/routes/openai/index.ts";
import { healthRouter } from "../http/routes/health/index.ts";
import { modelsRouter } from "../http/routes/models/index.ts";
import { playgroundRouter } from "../http/routes/playground/index.ts";
import { predictRouter } from "../http/routes/predict/index.ts";
import { Prediction, PredictionV2 } from "../http/routes/predict/schemas.ts";
import pkg from "../../package.json" with { type: "json" };

export type AppDeps = {
  config: Pick<
    Config,
    | "DEFAULT_MODEL"
    | "DEFAULT_TEXT_MODEL"
    | "MAX_BATCH_INSTANCES"
    | "BODY_LIMIT_BYTES"
    | "CORS_ORIGINS"
    | "RATE_LIMIT_CAPACITY"
    | "RATE_LIMIT_REFILL_PER_SECOND"
    | "RATE_LIMIT_FAIL_OPEN"
    | "MAX_TOKENS"
    | "MAX_PROMPT_CHARS"
    | "SSE_KEEPALIVE_MS"
  >;
  repository: ModelCatalog;
  logger: Logger;
  /** API keys; without them authentication is off and clients are limited by address. */
  keys?: KeyStore;
  /** Where token buckets live (memory or Redis). */
  rateLimitStore: RateLimitStore;
  /** The client's address, from the runtime's connection info; rate limits use it when authentication is off. */
  clientAddress?: (c: Context) => string | undefined;
};

/** Headers browsers may read from cross-origin responses. */
const EXPOSED_HEADERS = [
  "RateLimit",
  "RateLimit-Policy",
  "X-RateLimit-Limit",
  "X-RateLimit-Remaining",
  "X-RateLimit-Reset",
  "Retry-After",
  "X-Request-Id",
  "X-Process-Time",
  "Server-Timing",
];

export const API_VERSIONS = ["1", "2"] as const;

/** `POST /predict` is versioned by the API-Version header: it routes as /v1/predict or /v2/predict. */
function versionedPath(request: Request): string {
  const path = getPath(request);
  if (path !== "/predict") return path;
  const version = request.headers.get("api-version")?.trim() ?? "1";
  return (API_VERSIONS as readonly string[]).includes(version) ? `/v${version}/predict` : path;
}

export function createApp({ config, repository, logger, keys, rateLimitStore, clientAddress }: AppDeps) {
  const defaultModel = repository.manifests.find((m) => m.name === config.DEFAULT_MODEL);
  if (!defaultModel) {
    throw new ConfigError(`DEFAULT_MODEL=${config.DEFAULT_MODEL}: no such model in ${repository.root} (found ${repository.manifests.map((m) => m.name).join(", ") || "none"})`);
  }
  if (defaultModel.task !== "tabular-classification") throw new ConfigError(`DEFAULT_MODEL=${config.DEFAULT_MODEL}: not a tabular model`);

  const textModels = repository.manifests.filter((m) => m.task === "text-generation").map((m) => m.name);
  if (config.DEFAULT_TEXT_MODEL && !textModels.includes(config.DEFAULT_TEXT_MODEL)) {
    throw new ConfigError(`DEFAULT_TEXT_MODEL=${config.DEFAULT_TEXT_MODEL}: no text-generation model of that name in ${repository.root} (found ${textModels.join(", ") || "none"})`);
  }
  const generation = {
    defaultModel: config.DEFAULT_TEXT_MODEL ?? textModels[0],
    maxTokens: config.MAX_TOKENS,
    maxPromptChars: config.MAX_PROMPT_CHARS,
    keepAliveMs: config.SSE_KEEPALIVE_MS,
  };

  const api = createRouter<AppEnv>()
    .route("/", healthRouter(repository, pkg.version))
    .route("/", predictRouter(repository, defaultModel, config.MAX_BATCH_INSTANCES))
    .route("/", modelsRouter(repository))
    .route("/", generateRouter(repository, generation))
    .route("/", openAIRouter(repository, generation));
  documentVersionedPredict(api);

  for (const [name, scheme] of Object.entries(securitySchemes)) api.openAPIRegistry.registerComponent("securitySchemes", name, scheme);
  const scopeOf = scopeLookup(api);
  const scopeFor = (c: Context) => scopeOf(c.req.method, c.req.path);
  const defaultPolicy = { capacity: config.RATE_LIMIT_CAPACITY, refillPerSecond: config.RATE_LIMIT_REFILL_PER_SECOND };

  // Middleware, outermost first. Each line says why it sits where it does.
  const app = new Hono<AppEnv>({ getPath: versionedPath });
  // Request id first: every later log line and problem body carries it.
  app.use(requestId());
  // The access log wraps everything below, so it sees the final status and the whole latency.
  app.use(accessLog(logger));
  app.use(timing());
  app.use(secureHeaders());
  // CORS answers preflights before authentication: browsers send them without credentials. Requests without
  // an Origin header (curl, scripts) are not cross-origin, so they skip it and the headers it sets.
  const corsHeaders = cors({
    origin: config.CORS_ORIGINS,
    allowMethods: ["GET", "POST", "OPTIONS"],
    allowHeaders: ["Content-Type", "Authorization", "X-API-Key", "API-Version", "X-Request-Id", "Last-Event-ID"],
    exposeHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
  app.use(function corsOnlyWithOrigin(c, next) {
    if (c.req.header("origin") !== undefined) return corsHeaders(c, next);
    // What cors() would say to any origin, so a shared cache may hand this response to a browser too.
    if (config.CORS_ORIGINS === "*") c.header("Access-Control-Allow-Origin", "*");
    else c.header("Vary", "Origin");
    return next();
  });
  // OpenAI-compatible routes translate every problem below this point into OpenAI's error shape.
  for (const path of ["/v1/completions", "/v1/chat/completions", "/v1/models"]) app.use(path, openAIErrors());
  app.on("GET", "/v1/models/:model", openAIErrors());
  // Authentication before the rate limit, so a limit is per key; both before the body is read.
  if (keys) {
    app.use(
      apiKeyAuth({
        keys,
        scopeFor,
        // EventSource cannot send headers: the streaming GET alone may carry the key in its query.
        queryParam: (c) => (c.req.method === "GET" && c.req.path === "/v1/generate" ? c.req.query("api_key") : undefined),
      }),
    );
  }
  app.use(
    rateLimit({
      store: rateLimitStore,
      failOpen: config.RATE_LIMIT_FAIL_OPEN,
      logger,
      identify: (c) => {
        if (!scopeFor(c)) return undefined; // public routes are not limited
        const key = c.get("apiKey");
        if (key) return { key: `key:${key.name}`, policy: key.rateLimit ?? defaultPolicy };
        return { key: `ip:${clientAddress?.(c) ?? "unknown"}`, policy: defaultPolicy };
      },
    }),
  );
  const tooLarge = (c: Context) =>
    problemResponse(c, new ProblemError(413, "Content Too Large", `The request body is larger than ${config.BODY_LIMIT_BYTES} bytes.`));
  const limitStream = bodyLimit({ maxSize: config.BODY_LIMIT_BYTES, onError: tooLarge });
  app.use(async function limitBody(c, next) {
    // A declared length is checked from the header alone; touching the body stream would slow Bun's own
    // parsing. Chunked bodies are counted as they stream, by Hono's bodyLimit.
    const length = c.req.header("content-length");
    if (length === undefined || c.req.header("transfer-encoding") !== undefined) return limitStream(c, next);
    if (Number(length) > config.BODY_LIMIT_BYTES) return tooLarge(c);
    return next();
  });
  app.route("/", playgroundRouter());
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

  app.notFound((c) => problemResponse(c, new ProblemError(404, "Not Found", `No route for ${c.req.method} ${clientPath(c)}.`)));
  app.onError(problemErrorHandler(logger));
  return app;
}

function documentVersionedPredict(api: ReturnType<typeof createRouter<AppEnv>>) {
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
        content: { "application/json": { schema: z
              .object({})
              .passthrough()
              .openapi({ description: "The body of /v1/predict or /v2/predict", example: { features: [5.1, 3.5, 1.4, 0.2] } }) } },
      },
    },
    responses: {
      200: { description: "As /v1/predict or /v2/predict", content: { "application/json": { schema: z.union([Prediction, PredictionV2]) } } },
      ...problemResponses(...jsonBodyErrors, ...authErrors, 503),
    },
  });
}
