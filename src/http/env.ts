/** The app's Hono environment: what middleware puts on the context for the layers below it. */
import type { Context } from "hono";
import type { RequestIdVariables } from "hono/request-id";
import type { Logger } from "../observability/logger.ts";
import type { AccessLogVariables } from "./middleware/access-log.ts";
import type { ApiKeyVariables } from "./middleware/api-key.ts";
import type { TimingVariables } from "./middleware/timing.ts";
import type { RouteInfo } from "./route-table.ts";

export type AppVariables = RequestIdVariables &
  AccessLogVariables &
  TimingVariables &
  ApiKeyVariables & {
    /** The request's route as the route table found it (null: none); see RouteTable.of. */
    route?: RouteInfo | null;
  };

export type AppEnv = { Variables: AppVariables };

/**
 * A logger for one request's own lines (errors, say), each carrying its request id: the app's logger, which the
 * access-log middleware puts on the context, bound to the id. Made when asked for, since most requests log
 * nothing but their access line. Undefined where the access log is not mounted.
 */
export function requestLog(c: Context): Logger | undefined {
  return (c.get("logger") as Logger | undefined)?.child({ request_id: c.get("requestId") });
}
