/**
 * RFC 9457 problem details: every error this server sends is application/problem+json, built here.
 * Engine errors, HTTP exceptions and validation failures are mapped to statuses in this one place.
 */
import type { Context, ErrorHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { getPath } from "hono/utils/url";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import { EngineError, type EngineErrorCode } from "../engine/errors.ts";
import { explainBadJson } from "./json-body.ts";
import type { Logger } from "../observability/logger.ts";
import { requestLog } from "./middleware/access-log.ts";

export type FieldError = { path: string; message: string };

export type Problem = {
  /** A URI reference naming the kind of problem; "about:blank" when the status says it all. */
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  /** The X-Request-Id of the request, to find its log lines. */
  request_id?: string;
  errors?: FieldError[];
};

/** Throw from anywhere below a route to answer with a problem. */
export class ProblemError extends Error {
  override name = "ProblemError";
  constructor(
    readonly status: ContentfulStatusCode,
    readonly title: string,
    detail: string,
    readonly options: { type?: string; errors?: FieldError[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
  }
}

const engineStatus: Record<EngineErrorCode, { status: ContentfulStatusCode; title: string }> = {
  model_not_found: { status: 404, title: "Model not found" },
  wrong_task: { status: 422, title: "Wrong kind of model" },
  invalid_input: { status: 422, title: "Invalid input" },
  overloaded: { status: 503, title: "Overloaded" },
  not_ready: { status: 503, title: "Not ready" },
  load_failed: { status: 500, title: "Model failed to load" },
  inference_failed: { status: 500, title: "Inference failed" },
};

export const problemType = (code: string) => `/problems/${code.replaceAll("_", "-")}`;

/** The path the client asked for (c.req.path is the routed one: POST /predict routes as /v1/predict or /v2/predict). */
export const clientPath = (c: Context) => getPath(c.req.raw);

/** The response for a problem; `instance` is the request path. Headers already set on `c` are kept. */
export function problemResponse(c: Context, error: ProblemError): Response {
  const requestId: string | undefined = c.get("requestId");
  const body: Problem = {
    type: error.options.type ?? "about:blank",
    title: error.title,
    status: error.status,
    detail: error.message,
    instance: clientPath(c),
    ...(requestId ? { request_id: requestId } : {}),
    ...(error.options.errors ? { errors: error.options.errors } : {}),
  };
  return c.body(JSON.stringify(body), error.status, { ...error.options.headers, "Content-Type": "application/problem+json" });
}

/** Turns zod issues into a 422 naming each field. */
export function validationProblem(issues: readonly z.core.$ZodIssue[], prefix: (string | number)[] = []): ProblemError {
  const errors = issues.map((issue) => ({
    path: [...prefix, ...issue.path].map(String).join(".") || "(body)",
    message: issue.message,
  }));
  const detail = errors.map((e) => `${e.path}: ${e.message}`).join("; ");
  return new ProblemError(422, "Validation failed", detail, { type: problemType("validation_error"), errors });
}

/** Maps anything thrown while handling a request to a ProblemError; unknown errors become a generic 500. */
export function toProblemError(error: unknown): ProblemError | undefined {
  if (error instanceof ProblemError) return error;
  if (error instanceof EngineError) {
    const { status, title } = engineStatus[error.code];
    const headers: Record<string, string> = error.retryAfter ? { "Retry-After": String(error.retryAfter) } : {};
    return new ProblemError(status, title, error.message, { type: problemType(error.code), headers });
  }
  if (error instanceof HTTPException) {
    const status = error.status as ContentfulStatusCode;
    return new ProblemError(status, statusTitle(status), error.message || statusTitle(status));
  }
  return undefined;
}

export function statusTitle(status: number): string {
  return (
    {
      400: "Bad Request",
      401: "Unauthorized",
      403: "Forbidden",
      404: "Not Found",
      405: "Method Not Allowed",
      413: "Content Too Large",
      415: "Unsupported Media Type",
      422: "Unprocessable Content",
      429: "Too Many Requests",
      500: "Internal Server Error",
      503: "Service Unavailable",
    }[status] ?? "Error"
  );
}

/** The app's onError: known errors become their problem; anything else is logged with its stack and answered 500. */
export function problemErrorHandler(logger: Logger): ErrorHandler {
  return async (error, c) => {
    if (error instanceof HTTPException && error.status === 400 && error.message.startsWith("Malformed JSON")) {
      // The body text is cached by the failed parse, so reading it again costs nothing.
      return problemResponse(c, explainBadJson(await c.req.text().catch(() => "")));
    }
    // The request's own logger, where the access log is mounted, carries its request id.
    const log: Logger = requestLog(c) ?? logger;
    const problem = toProblemError(error);
    if (problem) {
      // 503s (loading, overloaded) are states, not failures: debug, without a stack.
      if (problem.status === 503) log.debug({ path: clientPath(c), detail: problem.message }, "service unavailable");
      else if (problem.status >= 500) log.error({ err: error, path: clientPath(c) }, problem.message);
      return problemResponse(c, problem);
    }
    log.error({ err: error, method: c.req.method, path: clientPath(c) }, "unhandled error");
    return problemResponse(c, new ProblemError(500, "Internal Server Error", "The server failed to answer this request; the failure is logged."));
  };
}
