import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type { AppEnv } from "../../env.ts";
import { createRouter } from "../../openapi.ts";

export function inferenceProtocolRouter(_catalog: ModelCatalog, _serverVersion: string) {
  return createRouter<AppEnv>();
}
