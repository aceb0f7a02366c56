/**
 * Whether a served model can infer, answered cheaply however often it is asked: readiness probes are public and
 * may come in floods, and must neither crowd out real requests nor call a busy model broken.
 */
import { EngineError } from "../errors.ts";
import type { ServedModel } from "./repository.ts";
import type { TextModel } from "../tasks/text/generator.ts";

/** How long a passed check counts as evidence, so a flood of probes runs one self-test per model per second. */
const FRESH_MS = 1_000;
/** How long a generating model may take to finish its next decode step before it counts as stuck. */
const STEP_WAIT_MS = 5_000;

export class Liveness {
  private passedAt = -Infinity;
  private running: Promise<void> | undefined;

  constructor(private readonly model: ServedModel) {}

  /**
   * Resolves if the model passed a check within the last second, else runs one (shared by every caller while
   * it runs): a real inference, or for a text model that is generating, its next decode step. A model too busy
   * to take the self-test (its queue is full) passes: it is serving. Rejects with the failure otherwise.
   */
  check(): Promise<void> {
    if (performance.now() - this.passedAt < FRESH_MS) return Promise.resolve();
    this.running ??= this.probe()
      .then(() => void (this.passedAt = performance.now()))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async probe(): Promise<void> {
    const model = this.model;
    // A self-test generation would wait for a slot behind real requests; their next step is the same evidence.
    if (model.task === "text-generation" && model.stats().active > 0) return nextStep(model, STEP_WAIT_MS);
    try {
      await model.selfTest();
    } catch (error) {
      if (error instanceof EngineError && error.code === "overloaded") return;
      throw error;
    }
  }
}

/** Resolves when the model completes its next decode step; rejects if none comes within `ms` while it has work. */
function nextStep(model: TextModel, ms: number): Promise<void> {
  const from = model.stats().steps;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new EngineError("inference_failed", `no decode step completed within ${ms} ms`));
    }, ms);
    const stop = model.onStats((stats) => {
      // Steps that ran, or nothing left to run (every generation ended): either way the model is not stuck.
      if (stats.steps === from && stats.active > 0) return;
      clearTimeout(timer);
      stop();
      resolve();
    });
  });
}
