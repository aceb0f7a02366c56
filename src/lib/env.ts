/** The app's Hono environment: what middleware puts on the context for handlers. */
import type { RequestIdVariables } from "hono/request-id";
import type { TimingVariables } from "../middleware/timing/index.ts";
import type { AccessLogVariables } from "../middleware/access-log/index.ts";
import type { ApiKeyVariables } from "../middleware/api-key/index.ts";

export type AppEnv = { Variables: RequestIdVariables & TimingVariables & ApiKeyVariables & AccessLogVariables };
