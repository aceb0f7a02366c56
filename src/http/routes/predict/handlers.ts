import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { BatchTiming } from "../../../engine/scheduling/batcher.ts";
import type { AppEnv } from "../../env.ts";
import { recordTiming } from "../../middleware/timing.ts";
import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type { TabularManifest } from "../../../engine/registry/manifest.ts";
import { ProblemError, problemType, validationProblem } from "../../problem.ts";
import type { PredictRoutes } from "./routes.ts";
import { positionalFeatures } from "./schemas.ts";

export function predictHandlers(repository: ModelCatalog, defaultModel: string) {
  const tabular = (name: string) => {
    const model = repository.get(name);
    if (model.task !== "tabular-classification") {
      throw new ProblemError(422, "Wrong kind of model", `model '${name}' is a ${model.task} model, not a tabular classifier`, {
        type: problemType("wrong_task"),
      });
    }
    return model;
  };
  const ref = (m: TabularManifest) => ({ model: m.name, version: m.version });
  /** Server-Timing gets the engine's queue and inference time; the access log gets the model. */
  const record = (c: Context<AppEnv>, manifest: TabularManifest, timing: BatchTiming) => {
    c.set("model", manifest.name);
    recordTiming(c, "queue", timing.queueMs);
    recordTiming(c, "inference", timing.inferenceMs);
  };

  const v1: RouteHandler<PredictRoutes["v1"], AppEnv> = async (c) => {
    const model = tabular(defaultModel);
    const { predictions: [prediction], timing } = await model.predict([c.req.valid("json").features]);
    record(c, model.manifest, timing);
    return c.json({ ...ref(model.manifest), ...prediction! }, 200);
  };

  const batch: RouteHandler<PredictRoutes["batch"], AppEnv> = async (c) => {
    const model = tabular(defaultModel);
    const { predictions, timing } = await model.predict(c.req.valid("json").instances);
    record(c, model.manifest, timing);
    return c.json({ ...ref(model.manifest), predictions }, 200);
  };

  const byName: RouteHandler<PredictRoutes["byName"], AppEnv> = async (c) => {
    const model = tabular(c.req.valid("param").name);
    // The route's schema only knows "an array of numbers"; the model's manifest knows count and ranges.
    const parsed = positionalFeatures(model.manifest).safeParse(c.req.valid("json").features);
    if (!parsed.success) throw validationProblem(parsed.error.issues, ["features"]);
    const { predictions: [prediction], timing } = await model.predict([parsed.data]);
    record(c, model.manifest, timing);
    return c.json({ ...ref(model.manifest), ...prediction! }, 200);
  };

  const v2: RouteHandler<PredictRoutes["v2"], AppEnv> = async (c) => {
    const model = tabular(defaultModel);
    const named = c.req.valid("json");
    const row = model.manifest.features.map((f) => named[f.name]!);
    const { predictions: [p], timing } = await model.predict([row]);
    record(c, model.manifest, timing);
    const probabilities = Object.fromEntries(model.manifest.labels.map((label, i) => [label, p!.probabilities[i]!]));
    return c.json({ ...ref(model.manifest), label: p!.label, confidence: p!.probabilities[p!.class]!, probabilities }, 200);
  };

  return { v1, batch, byName, v2 };
}
