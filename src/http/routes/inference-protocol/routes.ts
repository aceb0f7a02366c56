/**
 * The Open Inference Protocol (KServe v2) REST API: server and model metadata, health, and inference on any
 * tabular or image model with the graph's own tensors. Every route declares its errors in the protocol's shape,
 * {"error": "..."}, which is how it gets them (middleware/error-shape). Only `infer` needs a key (scope predict).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { inferenceProtocolErrorResponses as errors } from "../../middleware/error-shape/kserve.ts";
import { jsonBody, jsonResponse as json, requires } from "../../openapi.ts";
import { ModelName } from "../../schemas.ts";
import { InferenceRequest, InferenceResponse, ModelMetadata, ModelReady, ServerLive, ServerMetadata, ServerReady } from "./schemas.ts";

const tags = ["Inference protocol (KServe v2)"];

const Version = z.object({
  version: z.string().openapi({ param: { name: "version", in: "path" }, description: "The served version (the only one that can be addressed)", example: "1.0.0" }),
});

export const server = createRoute({
  method: "get",
  path: "/v2",
  tags,
  summary: "Server metadata: name, version, extensions",
  responses: { 200: json(ServerMetadata, "The server"), ...errors(500) },
});

export const live = createRoute({
  method: "get",
  path: "/v2/health/live",
  tags,
  summary: "Server live: the process answers",
  description: "Always 200 while the process runs, as GET /health.",
  responses: { 200: json(ServerLive, "Live"), ...errors(500) },
});

export const ready = createRoute({
  method: "get",
  path: "/v2/health/ready",
  tags,
  summary: "Server ready: every model is loaded and shows it can infer",
  description: "As GET /readiness (one shared check per model per second): 200 when ready, else 503 naming each model that is loading or failed.",
  responses: { 200: json(ServerReady, "Ready"), ...errors(500, 503) },
});

const textModels = "Text-generation models are not served over this protocol: they are answered 404, saying so (use /v1/completions).";

/** The three model routes, at /v2/models/{name} or, with `versioned`, /v2/models/{name}/versions/{version}. */
function modelRoutes(versioned: boolean) {
  const base = versioned ? "/v2/models/{name}/versions/{version}" : "/v2/models/{name}";
  const params = versioned ? ModelName.extend(Version.shape) : ModelName;
  const which = versioned ? "The model's served version: any other version is 404, naming the served one. " : "";

  const metadata = createRoute({
    method: "get",
    path: base,
    tags,
    summary: `Model metadata${versioned ? " (of a version)" : ""}: versions, platform, input and output tensors`,
    description: `${which}Datatypes and shapes are the ONNX graph's, -1 for a free dimension (the batch first). ${textModels}`,
    request: { params },
    responses: { 200: json(ModelMetadata, "The model"), ...errors(404, 500, 503) },
  });

  const modelReady = createRoute({
    method: "get",
    path: `${base}/ready`,
    tags,
    summary: `Model ready${versioned ? " (of a version)" : ""}`,
    description: `${which}200 when the model is loaded and serving; 503 while it loads or when it failed to load, saying why. ${textModels}`,
    request: { params },
    responses: { 200: json(ModelReady, "Ready"), ...errors(404, 500, 503) },
  });

  const infer = createRoute({
    method: "post",
    path: `${base}/infer`,
    tags,
    ...requires("predict"),
    summary: `Inference${versioned ? " on a version" : ""} with the graph's own tensors`,
    description:
      `${which}Every input of the ONNX graph, by name, with its datatype (FP32 for float32...), shape (batch first) and data, flat ` +
      "or nested, row-major. The request joins the model's micro-batches like any other. `outputs` picks outputs; `id` is echoed; " +
      "`parameters` are accepted. Errors: 400 naming the tensor and what is wrong (name, datatype, shape, a value), 404 unknown model " +
      `or version, 503 not ready or overloaded. ${textModels}`,
    request: { params, body: jsonBody(InferenceRequest) },
    responses: { 200: json(InferenceResponse, "The outputs, each with name, shape, datatype and flat data"), ...errors(400, 401, 403, 404, 413, 415, 429, 500, 503) },
  });

  return { metadata, modelReady, infer };
}

export const unversioned = modelRoutes(false);
export const versioned = modelRoutes(true);

export type ModelRoutes = typeof unversioned | typeof versioned;
