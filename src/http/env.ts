/** The app's Hono environment: what middleware puts on the context for handlers. */
import type { RequestIdVariables } from "hono/request-id";
import type { TimingVariables } from "./middleware/timing.ts";
import type { AccessLogVariables } from "./middleware/access-log.ts";
import type { ApiKeyVariables } from "./middleware/api-key.ts";

export type AppEnv = { Variables: RequestIdVariables & TimingVariables & ApiKeyVariables & AccessLogVariables };
