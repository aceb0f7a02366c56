/**
 * /v1/predict with no middleware at all: the prediction router, the engine and the error handler, on Bun.serve.
 * The benchmark compares it with the full app to price the middleware.
 */
import { Hono } from "hono";
import { loadConfig } from "../src/config.ts";
import { ModelRepository } from "../src/engine/repository.ts";
import { createLogger } from "../src/lib/logger.ts";
import { problemErrorHandler } from "../src/lib/problem.ts";
import { predictRouter } from "../src/routes/predict/index.ts";

const config = loadConfig();
const repository = new ModelRepository(config.MODELS_DIR, {
  sessionsPerModel: config.SESSIONS_PER_MODEL,
  intraOpThreads: config.INTRA_OP_THREADS,
  inlineInferenceMaxMs: config.INLINE_INFERENCE_MAX_MS,
  batching: { maxBatchSize: config.MAX_BATCH_SIZE, maxWaitMs: config.MAX_BATCH_WAIT_MS, maxQueue: config.MAX_QUEUE },
  generation: { maxStreams: 1, maxQueue: 0, maxTokens: 1, maxGenerationMs: 1000 },
});
await repository.loadAll();
const manifest = repository.manifests.find((m) => m.name === config.DEFAULT_MODEL);
if (manifest?.task !== "tabular-classification") throw new Error(`DEFAULT_MODEL ${config.DEFAULT_MODEL} is not a tabular model`);
const app = new Hono().route("/", predictRouter(repository, manifest, config.MAX_BATCH_INSTANCES));
app.onError(problemErrorHandler(createLogger(config.LOG_LEVEL)));
Bun.serve({ hostname: config.HOST, port: config.PORT, fetch: app.fetch });
