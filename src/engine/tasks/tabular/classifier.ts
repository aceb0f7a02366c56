/** A tabular classifier: rows of features in, class probabilities out, through the model's row batcher. */
import { EngineError } from "../../errors.ts";
import type { Feeds } from "../../execution/session-pool.ts";
import { exampleRow, type TabularManifest } from "../../registry/manifest.ts";
import type { BatchTiming } from "../../scheduling/batcher.ts";
import type { RowBatcher, RowResult } from "../../scheduling/row-batcher.ts";

export type Classification = {
  /** Index of the most probable label. */
  class: number;
  label: string;
  /** One probability per label, in the manifest's label order. */
  probabilities: number[];
};

/** What routes need of a tabular model; TabularClassifier is the real one, tests may bring a fake. */
export interface TabularModel {
  readonly task: "tabular-classification";
  readonly manifest: TabularManifest;
  predict(rows: readonly (readonly number[])[]): Promise<Predictions>;
  /** The graph's own tensors in and out, batched with everything else (the inference protocol's way in). */
  infer(feeds: Feeds): Promise<RowResult>;
  readonly signature: Pick<RowBatcher, "inputs" | "outputs">;
  selfTest(): Promise<void>;
  close(): Promise<void>;
}

/** One result per row, and where the time went. */
export type Predictions = { predictions: Classification[]; timing: BatchTiming };

export class TabularClassifier implements TabularModel {
  readonly task = "tabular-classification" as const;
  private readonly featureCount: number;

  constructor(
    readonly manifest: TabularManifest,
    private readonly batcher: RowBatcher,
  ) {
    this.featureCount = manifest.features.length;
    checkSignature(manifest, batcher);
  }

  get signature() {
    return this.batcher;
  }

  /** Classifies rows that already passed the manifest's validation. All rows of a call share one batch. */
  async predict(rows: readonly (readonly number[])[]): Promise<Predictions> {
    const flat = new Float32Array(rows.length * this.featureCount);
    rows.forEach((row, i) => {
      if (row.length !== this.featureCount) throw new EngineError("invalid_input", `row ${i} has ${row.length} features, expected ${this.featureCount}`);
      flat.set(row, i * this.featureCount);
    });
    const { input, output } = this.manifest.onnx;
    const { outputs, timing } = await this.batcher.run({ [input]: { type: "float32", dims: [rows.length, this.featureCount], data: flat } });
    const labels = this.manifest.labels;
    const probabilities = outputs[output];
    if (!probabilities || probabilities.data.length !== rows.length * labels.length) {
      throw new EngineError("inference_failed", `output '${output}' does not hold ${rows.length}x${labels.length} probabilities`);
    }
    const values = probabilities.data as Float32Array;
    const predictions = rows.map((_, row) => {
      const p = Array.from(values.subarray(row * labels.length, (row + 1) * labels.length));
      const best = p.indexOf(Math.max(...p));
      return { class: best, label: labels[best]!, probabilities: p };
    });
    return { predictions, timing };
  }

  infer(feeds: Feeds): Promise<RowResult> {
    return this.batcher.run(feeds);
  }

  /** One real inference on the manifest's example values (or each feature's lower bound). */
  async selfTest(): Promise<void> {
    const { predictions } = await this.predict([exampleRow(this.manifest)]);
    const sum = predictions[0]!.probabilities.reduce((a, b) => a + b, 0);
    if (!Number.isFinite(sum)) throw new EngineError("inference_failed", "self-test produced non-finite probabilities");
  }

  close() {
    return this.batcher.close();
  }
}

/** Fails the load when the graph's input/output names or widths disagree with the manifest. */
function checkSignature(manifest: TabularManifest, graph: Pick<RowBatcher, "inputs" | "outputs">) {
  const input = graph.inputs.find((i) => i.name === manifest.onnx.input);
  const output = graph.outputs.find((o) => o.name === manifest.onnx.output);
  const problem = (msg: string) => new EngineError("load_failed", `${manifest.name}: ${msg}`);
  if (!input) throw problem(`the graph has no input '${manifest.onnx.input}' (it has ${graph.inputs.map((i) => i.name).join(", ")})`);
  if (!output) throw problem(`the graph has no output '${manifest.onnx.output}' (it has ${graph.outputs.map((o) => o.name).join(", ")})`);
  if (graph.inputs.length !== 1) throw problem(`the graph takes ${graph.inputs.length} inputs; a tabular model takes one`);
  const width = (shape: (number | string)[]) => shape[1];
  if (typeof width(input.shape) === "number" && width(input.shape) !== manifest.features.length) {
    throw problem(`the graph takes ${width(input.shape)} features, the manifest lists ${manifest.features.length}`);
  }
  if (typeof width(output.shape) === "number" && width(output.shape) !== manifest.labels.length) {
    throw problem(`the graph returns ${width(output.shape)} probabilities, the manifest lists ${manifest.labels.length} labels`);
  }
}
