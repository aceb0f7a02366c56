/** The engine's one error type: a code per case, mapped to HTTP in one place (src/lib/problem.ts). */
export type EngineErrorCode =
  | "model_not_found" // no model of that name
  | "wrong_task" // the model exists but does not do what was asked of it
  | "invalid_input" // the request is well-formed but the model cannot take it
  | "unsupported_media_type" // a file is not of a type the model reads (decided by its bytes)
  | "too_large" // an input is larger than the server accepts (an image's pixels, say)
  | "conflict" // the model or version already exists
  | "overloaded" // admission control refused the request
  | "not_ready" // the model is still loading or failed to load
  | "load_failed" // a model could not be loaded from disk
  | "inference_failed"; // ONNX Runtime failed on input that passed validation

export class EngineError extends Error {
  override name = "EngineError";
  constructor(
    readonly code: EngineErrorCode,
    message: string,
    /** Seconds after which a retry may succeed (overloaded, not_ready). */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}
