import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import pkg from "../../../../package.json" with { type: "json" };
import { EngineError } from "../../../engine/errors.ts";
import type { Feeds } from "../../../engine/execution/session-pool.ts";
import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type { ImageModel } from "../../../engine/tasks/image/classifier.ts";
import type { TabularModel } from "../../../engine/tasks/tabular/classifier.ts";
import type { AppEnv } from "../../env.ts";
import { recordTiming } from "../../middleware/timing.ts";
import { ProblemError, problemType } from "../../problem.ts";
import type * as routes from "./routes.ts";
import { datatypeOf, decodeTensor, encodeData, protocolShape, TensorError, type InferenceRequestBody } from "./schemas.ts";

type TensorModel = TabularModel | ImageModel;
type Params = { name: string; version?: string };

const notFound = (detail: string) => new ProblemError(404, "Model not found", detail, { type: problemType("model_not_found") });
const invalid = (detail: string) => new ProblemError(422, "Invalid input", detail, { type: problemType("invalid_input") });
const quoted = (names: string[]) => names.map((n) => `'${n}'`).join(", ");

export function inferenceProtocolHandlers(catalog: ModelCatalog, serverVersion: string) {
  /**
   * The model a path names, when this protocol serves it: known, not a text-generation model, and (when the path
   * names a version) at the served version. Throws 404 saying which of these fails, or not_ready (503).
   */
  const served = ({ name, version }: Params): TensorModel => {
    if (!catalog.names.includes(name)) {
      const servable = catalog.names.filter((n) => catalog.manifest(n)?.task !== "text-generation");
      throw notFound(`no model named '${name}'; this protocol serves: ${servable.join(", ") || "none"}`);
    }
    const manifest = catalog.manifest(name);
    if (manifest?.task === "text-generation") {
      throw notFound(`model '${name}' is a text-generation model, which the inference protocol does not serve; use /v1/completions or /v1/generate`);
    }
    if (version !== undefined && manifest && version !== manifest.version) {
      throw notFound(`model '${name}' has no version '${version}'; the served version is ${manifest.version}`);
    }
    return catalog.get(name) as TensorModel;
  };

  const server: RouteHandler<typeof routes.server, AppEnv> = (c) => c.json({ name: pkg.name, version: serverVersion, extensions: [] }, 200);

  const live: RouteHandler<typeof routes.live, AppEnv> = (c) => c.json({ live: true }, 200);

  const ready: RouteHandler<typeof routes.ready, AppEnv> = async (c) => {
    const { ready, models } = await catalog.readiness();
    if (!ready) {
      const waiting = models.filter((m) => m.state !== "ready").map((m) => `${m.name} is ${m.state}${m.error ? ` (${m.error})` : ""}`);
      throw new ProblemError(503, "Not ready", waiting.join("; ") || "no models are configured", { type: problemType("not_ready"), headers: { "Retry-After": "1" } });
    }
    return c.json({ ready: true }, 200);
  };

  const metadata: RouteHandler<ModelRoute<"metadata">, AppEnv> = (c) => {
    const params = c.req.valid("param") as Params;
    const model = served(params);
    const tensors = (list: TensorModel["signature"]["inputs"]) => list.map((t) => ({ name: t.name, datatype: datatypeOf(t.type), shape: protocolShape(t.shape) }));
    return c.json(
      {
        name: params.name,
        versions: [model.manifest.version],
        platform: "onnx_onnxv1" as const,
        inputs: tensors(model.signature.inputs),
        outputs: tensors(model.signature.outputs),
      },
      200,
    );
  };

  const modelReady: RouteHandler<ModelRoute<"modelReady">, AppEnv> = (c) => {
    const params = c.req.valid("param") as Params;
    served(params);
    return c.json({ name: params.name, ready: true }, 200);
  };

  const infer: RouteHandler<ModelRoute<"infer">, AppEnv> = async (c) => {
    const params = c.req.valid("param") as Params;
    const model = served(params);
    const body = c.req.valid("json");
    const feeds = toFeeds(model, body);
    const outputNames = requestedOutputs(model, body);
    const { outputs, timing } = await model.infer(feeds);
    setTimings(c, params.name, timing);
    const answered = outputNames.map((name) => {
      const tensor = outputs[name];
      if (!tensor) throw new EngineError("inference_failed", `the model returned no output '${name}'`);
      try {
        return { name, shape: tensor.dims, datatype: datatypeOf(tensor.type), data: encodeData(name, tensor) };
      } catch (error) {
        // Not the request's fault: the model gave a value JSON cannot carry.
        if (error instanceof TensorError) throw new EngineError("inference_failed", error.message);
        throw error;
      }
    });
    return c.json({ model_name: params.name, model_version: model.manifest.version, ...(body.id !== undefined ? { id: body.id } : {}), outputs: answered }, 200);
  };

  return { server, live, ready, metadata, modelReady, infer };
}

type ModelRoute<K extends keyof typeof routes.unversioned> = (typeof routes.unversioned)[K];

/** The engine's feeds for the request's tensors, each checked against the graph input of its name. */
function toFeeds(model: TensorModel, body: InferenceRequestBody): Feeds {
  const graphInputs = model.signature.inputs;
  const feeds: Feeds = {};
  const unknown: string[] = [];
  for (const tensor of body.inputs) {
    const input = graphInputs.find((i) => i.name === tensor.name);
    if (!input) {
      unknown.push(tensor.name);
      continue;
    }
    if (feeds[tensor.name]) throw invalid(`input '${tensor.name}' is given twice`);
    try {
      feeds[tensor.name] = decodeTensor(tensor, input);
    } catch (error) {
      throw error instanceof TensorError ? invalid(error.message) : error;
    }
  }
  if (unknown.length > 0) {
    throw invalid(`the model has no input ${quoted(unknown)}; its inputs are ${quoted(graphInputs.map((i) => i.name))}`);
  }
  return feeds;
}

/** The outputs to answer, in the order asked: every graph output when the request names none. */
function requestedOutputs(model: TensorModel, body: InferenceRequestBody): string[] {
  const names = model.signature.outputs.map((o) => o.name);
  if (!body.outputs) return names;
  const asked = body.outputs.map((o) => o.name);
  const unknown = asked.filter((n) => !names.includes(n));
  if (unknown.length > 0) throw invalid(`the model has no output ${quoted(unknown)}; its outputs are ${quoted(names)}`);
  return [...new Set(asked)];
}

/** Server-Timing gets the engine's queue and inference time, the access log the model. */
function setTimings(c: Context<AppEnv>, model: string, timing: { queueMs: number; inferenceMs: number }) {
  c.set("model", model);
  recordTiming(c, "queue", timing.queueMs);
  recordTiming(c, "inference", timing.inferenceMs);
}
