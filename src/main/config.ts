/** Server configuration: one zod schema over the environment, parsed once at start-up. */
import { z } from "zod";
import "../lib/messages.ts";

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(["true", "false", "1", "0", "yes", "no"]).transform((v) => ["true", "1", "yes"].includes(v));

export const ConfigSchema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  /** Loopback by default, as uvicorn: nothing outside the machine reaches the server until HOST says so (0.0.0.0 in a container). */
  HOST: z.string().min(1).default("127.0.0.1"),
  PORT: int(0, 65535).default(8000),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** Folder holding one sub-folder per model (model.onnx + model.json). */
  MODELS_DIR: z.string().min(1).default("models"),
  /** The tabular model behind /v1/predict, /v2/predict and /predict. */
  DEFAULT_MODEL: z.string().min(1).default("iris"),
  /** ONNX sessions per model, each in its own worker thread. */
  SESSIONS_PER_MODEL: int(1, 64).default(1),
  /** Threads one ONNX session may use for a single run. */
  INTRA_OP_THREADS: int(1, 64).default(1),
  /**
   * A tabular model (a file of at most 1 MiB) whose full batch runs in at most this many milliseconds, measured
   * at load, runs on the event loop instead of in worker threads: the hand-off would cost more than the run.
   * 0: always in workers.
   */
  INLINE_INFERENCE_MAX_MS: z.coerce.number().min(0).max(1000).default(0.1),
  /** Rows one batched ONNX call may hold. */
  MAX_BATCH_SIZE: int(1, 4096).default(32),
  /** How long the first request of a batch may wait for others, in milliseconds. */
  MAX_BATCH_WAIT_MS: z.coerce.number().min(0).max(1000).default(1),
  /** Requests a model may have waiting; more are refused with 503. */
  MAX_QUEUE: int(1, 1_000_000).default(1024),
  /** Instances one /v1/predict/batch request may carry. */
  MAX_BATCH_INSTANCES: int(1, 100_000).default(1000),
  /** Largest request body, in bytes (image and model uploads have their own limits, below). */
  BODY_LIMIT_BYTES: int(1, 1 << 30).default(1 << 20),

  /** The image model behind POST /v1/classify; default: the first image-classification model in MODELS_DIR. */
  DEFAULT_IMAGE_MODEL: z.string().min(1).optional(),
  /** Largest image upload, in bytes: per file and per request, on the image routes. */
  IMAGE_MAX_BYTES: int(1, 1 << 30).default(10 << 20),
  /** Most pixels an image may have, read from its header before it is decoded (decompression bombs). */
  IMAGE_MAX_PIXELS: int(1, 1_000_000_000).default(25_000_000),
  /** Most images one classification request may carry. */
  IMAGE_MAX_FILES: int(1, 1024).default(16),
  /** Largest model upload (model.onnx, model.json and tokenizer.json together), in bytes. */
  MODEL_UPLOAD_MAX_BYTES: int(1, 2 ** 31).default(200 << 20),
  /** Versions of a model kept on disk, the served one included; older ones are deleted after an upload. */
  MODEL_VERSIONS_KEPT: int(1, 100).default(2),

  /** The text-generation model used when a request names none; default: the first one in MODELS_DIR. */
  DEFAULT_TEXT_MODEL: z.string().min(1).optional(),
  /** The most tokens one generation may ask for. */
  MAX_TOKENS: int(1, 1_000_000).default(256),
  /** The longest prompt, in characters (the context length limits it in tokens too). */
  MAX_PROMPT_CHARS: int(1, 10_000_000).default(8192),
  /** Generations that share decode steps at once, per text model; more wait in a queue. */
  GENERATION_MAX_STREAMS: int(1, 1024).default(16),
  /** Generations that may wait for a slot; more are refused with 503. */
  GENERATION_MAX_QUEUE: int(0, 1_000_000).default(64),
  /** A generation is ended (finish_reason "length") after this long. */
  GENERATION_TIMEOUT_MS: int(1, 86_400_000).default(60_000),
  /** Milliseconds without a token before an SSE stream gets a keep-alive comment. */
  SSE_KEEPALIVE_MS: int(100, 600_000).default(5_000),

  /** JSON file of API-key hashes and scopes; without it, authentication is off. */
  API_KEYS_FILE: z.string().min(1).optional(),
  /** Token bucket per API key (per client IP without keys): burst size and tokens added per second. */
  RATE_LIMIT_CAPACITY: int(1, 1_000_000_000).default(60),
  RATE_LIMIT_REFILL_PER_SECOND: z.coerce.number().positive().max(1_000_000_000).default(1),
  /** Share rate-limit buckets through Redis (redis://host:port) instead of process memory. */
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  /** When Redis is unreachable: let requests through (true) or refuse them with 503 (false). */
  RATE_LIMIT_FAIL_OPEN: bool.default(true),
  /** Comma-separated origins allowed by CORS, or * for any (without credentials). */
  CORS_ORIGINS: z
    .string()
    .default("*")
    .transform((v) => (v.trim() === "*" ? "*" : v.split(",").map((o) => o.trim()).filter(Boolean))),
}).superRefine((config, ctx) => {
  if (config.NODE_ENV === "production" && !config.API_KEYS_FILE) {
    ctx.addIssue({ code: "custom", path: ["API_KEYS_FILE"], message: "is required when NODE_ENV=production (authentication cannot be off in production)" });
  }
});

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses the environment; throws a ConfigError naming every invalid variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Blank values count as unset, as in most .env tooling.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ""));
  const result = ConfigSchema.safeParse(present);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => {
    const value = env[String(i.path[0])];
    return `${i.path.join(".")}${value ? `=${JSON.stringify(value)}` : " (unset)"}: ${i.message}`;
  });
  throw new ConfigError(`Invalid environment variable${lines.length > 1 ? "s" : ""}:\n  ${lines.join("\n  ")}`);
}
