import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../../src/main/config.ts";

/** The ConfigError loadConfig throws for `env`. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe("loadConfig", () => {
  test("defaults when nothing is set", () => {
    expect(loadConfig({})).toMatchObject({
      NODE_ENV: "development",
      HOST: "127.0.0.1",
      PORT: 8000,
      LOG_LEVEL: "info",
      MODELS_DIR: "models",
      DEFAULT_MODEL: "iris",
      SESSIONS_PER_MODEL: 1,
      INTRA_OP_THREADS: 1,
      MAX_BATCH_SIZE: 32,
      MAX_BATCH_WAIT_MS: 1,
      MAX_QUEUE: 1024,
      MAX_BATCH_INSTANCES: 1000,
      BODY_LIMIT_BYTES: 1048576,
      IMAGE_MAX_BYTES: 10 * 1024 * 1024,
      IMAGE_MAX_PIXELS: 25_000_000,
      IMAGE_MAX_FILES: 16,
      MODEL_UPLOAD_MAX_BYTES: 200 * 1024 * 1024,
      MODEL_VERSIONS_KEPT: 2,
    });
  });

  test("upload limits take values up to their caps, and no more", () => {
    expect(loadConfig({ MODEL_UPLOAD_MAX_BYTES: String(2 ** 31), IMAGE_MAX_BYTES: "1", MODEL_VERSIONS_KEPT: "100" })).toMatchObject({
      MODEL_UPLOAD_MAX_BYTES: 2 ** 31,
      IMAGE_MAX_BYTES: 1,
      MODEL_VERSIONS_KEPT: 100,
    });
    expect(configError({ MODEL_UPLOAD_MAX_BYTES: String(2 ** 31 + 1) }).message).toContain("MODEL_UPLOAD_MAX_BYTES");
    expect(configError({ MODEL_VERSIONS_KEPT: "0" }).message).toContain("MODEL_VERSIONS_KEPT");
  });

  test("reads strings and coerces numbers", () => {
    const config = loadConfig({
      NODE_ENV: "test",
      HOST: "0.0.0.0",
      PORT: "8080",
      LOG_LEVEL: "warn",
      MODELS_DIR: "/srv/models",
      DEFAULT_MODEL: "wine",
      SESSIONS_PER_MODEL: "4",
      INTRA_OP_THREADS: "2",
      MAX_BATCH_SIZE: "64",
      MAX_BATCH_WAIT_MS: "2.5",
      MAX_QUEUE: "10",
      MAX_BATCH_INSTANCES: "50",
      BODY_LIMIT_BYTES: "4096",
    });
    expect(config).toMatchObject({
      NODE_ENV: "test",
      HOST: "0.0.0.0",
      PORT: 8080,
      LOG_LEVEL: "warn",
      MODELS_DIR: "/srv/models",
      DEFAULT_MODEL: "wine",
      SESSIONS_PER_MODEL: 4,
      INTRA_OP_THREADS: 2,
      MAX_BATCH_SIZE: 64,
      MAX_BATCH_WAIT_MS: 2.5,
      MAX_QUEUE: 10,
      MAX_BATCH_INSTANCES: 50,
      BODY_LIMIT_BYTES: 4096,
    });
  });

  test("PORT 0 (any free port) is allowed", () => {
    expect(loadConfig({ PORT: "0" }).PORT).toBe(0);
  });

  test("an empty string counts as unset", () => {
    const config = loadConfig({ PORT: "", HOST: "", LOG_LEVEL: "", MAX_BATCH_SIZE: "", DEFAULT_MODEL: "" });
    expect(config).toMatchObject({ PORT: 8000, HOST: "127.0.0.1", LOG_LEVEL: "info", MAX_BATCH_SIZE: 32, DEFAULT_MODEL: "iris" });
  });

  test("variables it does not know are ignored", () => {
    expect(loadConfig({ PATH: "/usr/bin", HOME: "/root" })).toEqual(loadConfig({}));
  });

  test.each([
    ["PORT", "abc"],
    ["PORT", "65536"],
    ["PORT", "-1"],
    ["PORT", "80.5"],
    ["MAX_BATCH_SIZE", "0"],
    ["MAX_BATCH_SIZE", "4097"],
    ["SESSIONS_PER_MODEL", "0"],
    ["MAX_BATCH_WAIT_MS", "1001"],
    ["MAX_QUEUE", "many"],
    ["BODY_LIMIT_BYTES", "0"],
    ["LOG_LEVEL", "loud"],
    ["NODE_ENV", "staging"],
  ])("%s=%s is refused with a ConfigError naming the variable and its value", (name, value) => {
    const error = configError({ [name]: value });
    expect(error.name).toBe("ConfigError");
    expect(error.message).toStartWith("Invalid environment variable:\n");
    expect(error.message).toContain(`${name}=${JSON.stringify(value)}: `);
  });

  test("names every invalid variable at once", () => {
    const error = configError({ PORT: "abc", MAX_BATCH_SIZE: "0", LOG_LEVEL: "loud", HOST: "localhost" });
    expect(error.message).toStartWith("Invalid environment variables:\n");
    const lines = error.message.split("\n").slice(1);
    expect(lines).toHaveLength(3);
    expect(lines.map((l) => l.trim().split("=")[0]).sort()).toEqual(["LOG_LEVEL", "MAX_BATCH_SIZE", "PORT"]);
    expect(error.message).toContain('LOG_LEVEL="loud": must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"');
  });

  test("a whitespace-only value counts as unset, not as 0", () => {
    expect(loadConfig({ PORT: " " }).PORT).toBe(8000);
    expect(loadConfig({ MAX_BATCH_WAIT_MS: "  " }).MAX_BATCH_WAIT_MS).toBe(1);
  });
});
