/** Engine settings and look-ups shared by tests that load real models. */
import type { EngineOptions, ModelRepository } from "../../src/engine/registry/repository.ts";
import type { TabularModel } from "../../src/engine/tasks/tabular/classifier.ts";

/** Small, valid engine options; `overrides` replace whole top-level entries. */
export function engineOptions(overrides: Partial<EngineOptions> = {}): EngineOptions {
  return {
    sessionsPerModel: 1,
    intraOpThreads: 1,
    // Worker threads, as for any model of real size; the inline placement has its own tests.
    inlineInferenceMaxMs: 0,
    batching: { maxBatchSize: 32, maxWaitMs: 1, maxQueue: 1024 },
    images: { maxPixels: 25_000_000 },
    generation: { maxStreams: 4, maxQueue: 16, maxGenerationMs: 60_000 },
    ...overrides,
  };
}

/** The loaded tabular model `name`; throws if it is of another task. */
export function tabularModel(repository: Pick<ModelRepository, "get">, name: string): TabularModel {
  const model = repository.get(name);
  if (model.task !== "tabular-classification") throw new Error(`${name} is a ${model.task} model, not a tabular one`);
  return model;
}
