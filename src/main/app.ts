/** Assembles the application: the middleware order and the mounts, and nothing else. */
import { Hono, type Context } from "hono";
import { requestId } from "hono/request-id";
import pkg from "../../package.json" with { type: "json" };
import type { KeyStore } from "../auth/key-store.ts";
import type { ModelCatalog } from "../engine/registry/repository.ts";
import { jsonBodies } from "../http/body.ts";
import type { AppEnv } from "../http/env.ts";
import { accessLog } from "../http/middleware/access-log.ts";
import { apiKeyAuth } from "../http/middleware/api-key.ts";
import { bodyLimit } from "../http/middleware/body-limit.ts";
import { cors } from "../http/middleware/cors.ts";
import { errorShapes } from "../http/middleware/error-shape/index.ts";
import { clientSubject, rateLimit } from "../http/middleware/rate-limit.ts";
import { secureHeaders } from "../http/middleware/secure-headers.ts";
import { timing } from "../http/middleware/timing.ts";
import { createRouter, securitySchemes } from "../http/openapi.ts";
import { problemErrorHandler } from "../http/problem.ts";
import { notFound, RouteTable } from "../http/route-table.ts";
import { classifyRouter } from "../http/routes/classify/index.ts";
import { docsRouter } from "../http/routes/docs/index.ts";
import { inferenceProtocolRouter } from "../http/routes/inference-protocol/index.ts";
import { generateRouter } from "../http/routes/generate/index.ts";
import { healthRouter } from "../http/routes/health/index.ts";
import { modelsRouter } from "../http/routes/models/index.ts";
import { openAIRouter } from "../http/routes/openai/index.ts";
import { playgroundRouter } from "../http/routes/playground/index.ts";
import { predictRouter } from "../http/routes/predict/index.ts";
import type { Logger } from "../observability/logger.ts";
import type { RateLimitStore } from "../ratelimit/store.ts";
import type { Config } from "./config.ts";

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
    | "DEFAULT_IMAGE_MODEL"
    | "IMAGE_MAX_BYTES"
    | "IMAGE_MAX_FILES"
    | "MODEL_UPLOAD_MAX_BYTES"
  >;
  catalog: ModelCatalog;
  logger: Logger;
  /** API keys; without them authentication is off and clients are limited by address. */
  keys?: KeyStore;
  /** Where token buckets live (memory or Redis). */
  rateLimitStore: RateLimitStore;
  /** The client's address, from the runtime's connection info; rate limits use it for requests without a key. */
  clientAddress?: (c: Context) => string | undefined;
};

export function createApp({ config, catalog, logger, keys, rateLimitStore, clientAddress }: AppDeps) {
  const text = { maxTokens: config.MAX_TOKENS, maxPromptChars: config.MAX_PROMPT_CHARS, keepAliveMs: config.SSE_KEEPALIVE_MS };
  const api = createRouter<AppEnv>()
    .route("/", healthRouter(catalog, pkg.version))
    .route("/", predictRouter(catalog, config.DEFAULT_MODEL, config.MAX_BATCH_INSTANCES))
    .route("/", modelsRouter(catalog, { uploadMaxBytes: config.MODEL_UPLOAD_MAX_BYTES }))
    .route("/", classifyRouter(catalog, { defaultModel: config.DEFAULT_IMAGE_MODEL, maxBytes: config.IMAGE_MAX_BYTES, maxFiles: config.IMAGE_MAX_FILES }))
    .route("/", inferenceProtocolRouter(catalog, pkg.version))
    .route("/", generateRouter(catalog, { ...text, defaultModel: config.DEFAULT_TEXT_MODEL }))
    .route("/", openAIRouter(catalog, text));
  for (const [name, scheme] of Object.entries(securitySchemes)) api.openAPIRegistry.registerComponent("securitySchemes", name, scheme);
  const docs = docsRouter(
    api,
    { title: "ONNX model server", version: pkg.version, description: "Predictions from ONNX models. Errors are RFC 9457 problem details (application/problem+json)." },
    () => catalog.revision,
  );
  const playground = playgroundRouter();
  // What each route declares (scope, JSON body, error shape), for the middleware that acts before it runs.
  const routes = new RouteTable(api, [api, docs, playground]);
  const limit = rateLimit({
    store: rateLimitStore,
    failOpen: config.RATE_LIMIT_FAIL_OPEN,
    logger,
    identify: clientSubject({
      limited: (c) => routes.of(c)?.scope !== undefined,
      defaultPolicy: { capacity: config.RATE_LIMIT_CAPACITY, refillPerSecond: config.RATE_LIMIT_REFILL_PER_SECOND },
      clientAddress,
    }),
  });

  // Middleware, outermost first. Each line says why it sits where it does.
  const app = new Hono<AppEnv>();
  // Request id first: every later log line and problem body carries it.
  app.use(requestId());
  // The access log wraps everything below, so it sees the final status and the whole latency.
  app.use(accessLog(logger));
  app.use(timing());
  app.use(secureHeaders());
  // CORS answers preflights before authentication: browsers send them without credentials.
  app.use(cors(config.CORS_ORIGINS));
  // Outside everything that can refuse a request, so routes of other protocol families get every error in their shape.
  app.use(errorShapes((c) => routes.of(c)?.errorSchema));
  // Authentication before the rate limit, so a limit is per key; a refused key is charged to the client's address.
  // Both before the body is read.
  if (keys) {
    app.use(
      apiKeyAuth({
        keys,
        scopeFor: (c) => routes.of(c)?.scope,
        queryParam: (c) => (routes.of(c)?.keyInQuery ? c.req.query("api_key") : undefined),
        onRefusal: (c) => limit(c, async () => {}),
      }),
    );
  }
  app.use(limit);
  app.use(bodyLimit((c) => routes.of(c)?.maxBodyBytes ?? config.BODY_LIMIT_BYTES));
  app.use(jsonBodies((c) => routes.of(c)?.takesJson === true));
  app.route("/", playground);
  app.route("/", api);
  app.route("/", docs);

  app.notFound(notFound(routes));
  app.onError(problemErrorHandler(logger));
  return app;
}
