import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type { AppEnv } from "../../env.ts";
import { createRouter } from "../../openapi.ts";

export type ClassifyOptions = {
  /** DEFAULT_IMAGE_MODEL; unset: the first image-classification model. */
  defaultModel: string | undefined;
  /** IMAGE_MAX_BYTES: per file and per request. */
  maxBytes: number;
  /** IMAGE_MAX_FILES: images one request may carry. */
  maxFiles: number;
};

export function classifyRouter(_catalog: ModelCatalog, _options: ClassifyOptions) {
  return createRouter<AppEnv>();
}
