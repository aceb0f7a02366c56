import type { RouteHandler, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type { TabularModel } from "../../../engine/tasks/tabular/classifier.ts";
import type { AppEnv } from "../../env.ts";
import { recordTiming } from "../../middleware/timing.ts";
import { ProblemError, problemType, validationProblem } from "../../problem.ts";
import { API_VERSIONS, type PredictRoutes } from "./routes.ts";
import { namedFeatures, positionalFeatures, v1Body } from "./schemas.ts";

type Predicted = Awaited<ReturnType<TabularModel["predict"]>>;

export function predictHandlers(catalog: ModelCatalog, defaultModel: string) {
  const tabular = (name: string) => catalog.get(name, "tabular-classification");

  /** Runs rows on a model; Server-Timing gets the engine's queue and inference time, the access log the model. */
  const predict = async (c: Context<AppEnv>, model: TabularModel, rows: number[][]): Promise<Predicted["predictions"]> => {
    const { predictions, timing } = await model.predict(rows);
    c.set("model", model.manifest.name);
    recordTiming(c, "queue", timing.queueMs);
    recordTiming(c, "inference", timing.inferenceMs);
    return predictions;
  };
  const ref = (model: TabularModel) => ({ model: model.manifest.name, version: model.manifest.version });

  const one = async (c: Context<AppEnv>, features: number[]) => {
    const model = tabular(defaultModel);
    const [prediction] = await predict(c, model, [features]);
    return { ...ref(model), ...prediction! };
  };

  const named = async (c: Context<AppEnv>, body: Record<string, number>) => {
    const model = tabular(defaultModel);
    const features = model.manifest.features;
    // Validated against the manifest of the moment; if a reload swapped in other features since, check again.
    if (features.some((f) => typeof body[f.name] !== "number")) parse(namedFeatures(model.manifest), body);
    const [p] = await predict(c, model, [features.map((f) => body[f.name]!)]);
    const probabilities = Object.fromEntries(model.manifest.labels.map((label, i) => [label, p!.probabilities[i]!]));
    return { ...ref(model), label: p!.label, confidence: p!.probabilities[p!.class]!, probabilities };
  };

  const v1: RouteHandler<PredictRoutes["v1"], AppEnv> = async (c) => c.json(await one(c, c.req.valid("json").features), 200);

  const batch: RouteHandler<PredictRoutes["batch"], AppEnv> = async (c) => {
    const model = tabular(defaultModel);
    const predictions = await predict(c, model, c.req.valid("json").instances);
    return c.json({ ...ref(model), predictions }, 200);
  };

  const byName: RouteHandler<PredictRoutes["byName"], AppEnv> = async (c) => {
    const model = tabular(c.req.valid("param").name);
    // The route's schema only knows "an array of numbers"; the model's manifest knows count and ranges.
    const features = parse(positionalFeatures(model.manifest), c.req.valid("json").features, ["features"]);
    const [prediction] = await predict(c, model, [features]);
    return c.json({ ...ref(model), ...prediction! }, 200);
  };

  const v2: RouteHandler<PredictRoutes["v2"], AppEnv> = async (c) => c.json(await named(c, c.req.valid("json")), 200);

  const versioned: RouteHandler<PredictRoutes["versioned"], AppEnv> = async (c) => {
    const version = c.req.valid("header")["api-version"]?.trim() ?? "1";
    if (version !== "1" && version !== "2") {
      throw new ProblemError(400, "Unsupported API version", `API-Version must be one of ${API_VERSIONS.join(", ")}; got '${version}'.`, {
        type: problemType("unsupported_api_version"),
      });
    }
    const manifest = tabular(defaultModel).manifest;
    const body = c.req.valid("json");
    if (version === "1") return c.json(await one(c, parse(v1Body(manifest), body).features), 200);
    return c.json(await named(c, parse(namedFeatures(manifest), body)), 200);
  };

  return { v1, batch, byName, v2, versioned };
}

/** `value` checked against `schema`; a 422 naming each invalid field otherwise. */
function parse<T>(schema: z.ZodType<T>, value: unknown, prefix: string[] = []): T {
  const result = schema.safeParse(value);
  if (!result.success) throw validationProblem(result.error.issues, prefix);
  return result.data;
}
