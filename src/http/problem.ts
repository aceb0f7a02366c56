/**
 * RFC 9457 problem details: every error this server sends starts as a ProblemError and is written here.
 * Engine errors, HTTP exceptions and validation failures are mapped to statuses in this one place; protocol
 * families with their own error shape (OpenAI's) translate the finished problem (middleware/error-shape/).
 */
import type { Context, ErrorHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import { EngineError, type EngineErrorCode } from "../engine/errors.ts";
import type { Logger } from "../observability/logger.ts";
import { requestLog } from "./env.ts";

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
  unsupported_media_type: { status: 415, title: "Unsupported Media Type" },
  too_large: { status: 413, title: "Content Too Large" },
  conflict: { status: 409, title: "Conflict" },
  overloaded: { status: 503, title: "Overloaded" },
  not_ready: { status: 503, title: "Not ready" },
  // Only a reload reaches a client with this: the files it was asked to load are what is wrong.
  load_failed: { status: 422, title: "Model failed to load" },
  inference_failed: { status: 500, title: "Inference failed" },
};

export const problemType = (code: string) => `/problems/${code.replaceAll("_", "-")}`;

/** The body of a problem answered to this request: `instance` is its path, `request_id` its id. */
export function problemBody(c: Context, error: ProblemError): Problem {
  const requestId: string | undefined = c.get("requestId");
  return {
    type: error.options.type ?? "about:blank",
    title: error.title,
    status: error.status,
    detail: error.message,
    instance: c.req.path,
    ...(requestId ? { request_id: requestId } : {}),
    ...(error.options.errors ? { errors: error.options.errors } : {}),
  };
}

/** The response for a problem. Headers already set on `c` are kept. */
export function problemResponse(c: Context, error: ProblemError): Response {
  return c.body(JSON.stringify(problemBody(c, error)), error.status, { ...error.options.headers, "Content-Type": "application/problem+json" });
}

/** A 422 naming each invalid field, from zod issues (whose messages openapi.ts makes readable). */
export function validationProblem(issues: readonly z.core.$ZodIssue[], prefix: (string | number)[] = []): ProblemError {
  const errors = issues.map((issue) => ({
    path: [...prefix, ...issue.path].map(String).join(".") || "(body)",
    message: issue.message,
  }));
  return invalidFields(errors);
}

/** A 422 for fields found invalid. */
export function invalidFields(errors: FieldError[]): ProblemError {
  const detail = errors.map((e) => `${e.path}: ${e.message}`).join("; ");
  return new ProblemError(422, "Validation failed", detail, { type: problemType("validation_error"), errors });
}

/** Maps anything thrown while handling a request to a ProblemError; unknown errors give undefined (a 500). */
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

/** The generic 500 for a failure the client cannot act on; the failure itself is logged. */
export const internalError = () => new ProblemError(500, "Internal Server Error", "The server failed to answer this request; the failure is logged.");

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
  return (error, c) => {
    // The request's own logger, where the access log is mounted, carries its request id.
    const log: Logger = requestLog(c) ?? logger;
    const problem = toProblemError(error);
    if (problem) {
      // 503s (loading, overloaded) are states, not failures: debug, without a stack.
      if (problem.status === 503) log.debug({ path: c.req.path, detail: problem.message }, "service unavailable");
      else if (problem.status >= 500) log.error({ err: error, path: c.req.path }, problem.message);
      return problemResponse(c, problem);
    }
    log.error({ err: error, method: c.req.method, path: c.req.path }, "unhandled error");
    return problemResponse(c, internalError());
  };
}
