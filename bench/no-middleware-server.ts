/**
 * /v1/predict with no middleware at all: the prediction router, the engine and the error handler, on Bun.serve.
 * The benchmark compares it with the full app to price the middleware.
 */
import { Hono } from "hono";
import { engineOptions } from "../src/main/boot.ts";
import { loadConfig } from "../src/main/config.ts";
import { ModelRepository } from "../src/engine/registry/repository.ts";
import { createLogger } from "../src/observability/logger.ts";
import { problemErrorHandler } from "../src/http/problem.ts";
import { predictRouter } from "../src/http/routes/predict/index.ts";

const config = loadConfig();
// The engine exactly as the server configures it, so the two differ only in the middleware.
const repository = new ModelRepository(config.MODELS_DIR, engineOptions(config));
await repository.loadAll();
const app = new Hono().route("/", predictRouter(repository, config.DEFAULT_MODEL, config.MAX_BATCH_INSTANCES));
app.onError(problemErrorHandler(createLogger(config.LOG_LEVEL)));
Bun.serve({ hostname: config.HOST, port: config.PORT, fetch: app.fetch });
