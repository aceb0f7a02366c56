/** Start-up shared by the Bun and Node entries: configuration, models, listening, graceful shutdown. */
import type { Context } from "hono";
import { loadKeyStore, type KeyStore } from "../auth/key-store.ts";
import { ModelRepository, type EngineOptions } from "../engine/registry/repository.ts";
import { createLogger } from "../observability/logger.ts";
import { MemoryStore } from "../ratelimit/memory-store.ts";
import { RedisStore } from "../ratelimit/redis-store.ts";
import type { RateLimitStore } from "../ratelimit/store.ts";
import { createApp } from "./app.ts";
import { ConfigError, loadConfig, type Config } from "./config.ts";

export type Listening = { url: string; stop: () => Promise<void> };
export type Listen = (app: ReturnType<typeof createApp>, config: Config) => Promise<Listening>;

/**
 * Starts the server: `listen` is the runtime's (Bun.serve or @hono/node-server), `clientAddress` reads the
 * peer address from that runtime's connection info.
 */
export async function boot(listen: Listen, clientAddress: (c: Context) => string | undefined) {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
  const logger = createLogger(config.LOG_LEVEL);

  let repository: ModelRepository;
  let app: ReturnType<typeof createApp>;
  let rateLimitStore: RateLimitStore;
  try {
    let keys: KeyStore | undefined;
    if (config.API_KEYS_FILE) {
      keys = loadKeyStore(config.API_KEYS_FILE);
      logger.info({ file: config.API_KEYS_FILE, keys: keys.keys.length }, "API keys loaded");
    } else {
      logger.warn("API_KEYS_FILE is not set: authentication is OFF and every route is open (set it before exposing this server)");
    }
    rateLimitStore = config.REDIS_URL ? new RedisStore({ url: config.REDIS_URL }) : new MemoryStore();
    logger.info({ store: config.REDIS_URL ? "redis" : "memory" }, "rate limits kept in " + (config.REDIS_URL ? "Redis" : "process memory"));
    repository = new ModelRepository(config.MODELS_DIR, engineOptions(config), logger);
    checkDefaultModels(config, repository);
    app = createApp({ config, catalog: repository, logger, keys, rateLimitStore, clientAddress });
  } catch (error) {
    logger.fatal(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }

  // Listen first, so /health answers and /readiness says 503 while the models load.
  const server = await listen(app, config);

  // Signals are handled from here on, so a stop while models load is graceful too.
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    await server.stop();
    await repository.close();
    await rateLimitStore.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  logger.info({ url: server.url, models: repository.names }, "listening; loading models");

  const started = performance.now();
  // Each model logs its own outcome (ready, or failed with the reason and the file's full path).
  await repository.loadAll();
  logger.info({ ms: Math.round(performance.now() - started) }, "models loaded");
}

/**
 * DEFAULT_MODEL must name a model (a tabular one, when its manifest can be read), DEFAULT_TEXT_MODEL a text
 * model and DEFAULT_IMAGE_MODEL an image model: mistakes in configuration stop the server at once. A default model whose files are broken does not:
 * it is reported failed, as any model would be.
 */
export function checkDefaultModels(config: Pick<Config, "DEFAULT_MODEL" | "DEFAULT_TEXT_MODEL" | "DEFAULT_IMAGE_MODEL" | "MODELS_DIR">, repository: Pick<ModelRepository, "names" | "manifest">) {
  const found = `(found ${repository.names.join(", ") || "none"})`;
  for (const [variable, name, task] of [
    ["DEFAULT_MODEL", config.DEFAULT_MODEL, "tabular-classification"],
    ["DEFAULT_TEXT_MODEL", config.DEFAULT_TEXT_MODEL, "text-generation"],
    ["DEFAULT_IMAGE_MODEL", config.DEFAULT_IMAGE_MODEL, "image-classification"],
  ] as const) {
    if (name === undefined) continue;
    if (!repository.names.includes(name)) throw new ConfigError(`${variable}=${name}: no such model in ${config.MODELS_DIR} ${found}`);
    const actual = repository.manifest(name)?.task;
    if (actual !== undefined && actual !== task) throw new ConfigError(`${variable}=${name}: a model for ${actual}, not ${task}`);
  }
}

/** The inference engine's settings, from the configuration. */
export function engineOptions(config: Config): EngineOptions {
  return {
    sessionsPerModel: config.SESSIONS_PER_MODEL,
    intraOpThreads: config.INTRA_OP_THREADS,
    inlineInferenceMaxMs: config.INLINE_INFERENCE_MAX_MS,
    batching: { maxBatchSize: config.MAX_BATCH_SIZE, maxWaitMs: config.MAX_BATCH_WAIT_MS, maxQueue: config.MAX_QUEUE },
    images: { maxPixels: config.IMAGE_MAX_PIXELS },
    generation: {
      maxStreams: config.GENERATION_MAX_STREAMS,
      maxQueue: config.GENERATION_MAX_QUEUE,
      maxGenerationMs: config.GENERATION_TIMEOUT_MS,
    },
    versionsKept: config.MODEL_VERSIONS_KEPT,
  };
}
