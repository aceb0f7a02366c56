/** A tabular classifier: rows of features in, class probabilities out, through a micro-batcher and a session pool. */
import { MicroBatcher, type BatchTiming, type MicroBatcherOptions } from "../../scheduling/batcher.ts";
import { EngineError } from "../../errors.ts";
import { exampleRow, type TabularManifest } from "../../registry/manifest.ts";
import type { SessionPool } from "../../execution/session-pool.ts";

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
  selfTest(): Promise<void>;
  close(): Promise<void>;
}

/** One result per row, and where the time went. */
export type Predictions = { predictions: Classification[]; timing: BatchTiming };

export type BatchingOptions = Omit<MicroBatcherOptions, "concurrency">;

/** Rows of one request, flattened: rows.length = count * features. */
type RowBlock = { rows: Float32Array; count: number };

export class TabularClassifier implements TabularModel {
  readonly task = "tabular-classification" as const;
  private readonly batcher: MicroBatcher<RowBlock, Classification[]>;
  private readonly featureCount: number;

  constructor(
    readonly manifest: TabularManifest,
    private readonly pool: SessionPool,
    batching: BatchingOptions,
  ) {
    this.featureCount = manifest.features.length;
    checkSignature(manifest, pool);
    this.batcher = new MicroBatcher((blocks) => this.runBatch(blocks), { ...batching, concurrency: pool.size }, (b) => b.count);
  }

  /** Classifies rows that already passed the manifest's validation. All rows of a call share one batch. */
  async predict(rows: readonly (readonly number[])[]): Promise<Predictions> {
    const flat = new Float32Array(rows.length * this.featureCount);
    rows.forEach((row, i) => {
      if (row.length !== this.featureCount) throw new EngineError("invalid_input", `row ${i} has ${row.length} features, expected ${this.featureCount}`);
      flat.set(row, i * this.featureCount);
    });
    const { result, timing } = await this.batcher.submit({ rows: flat, count: rows.length });
    return { predictions: result, timing };
  }

  /** One real inference on the manifest's example values (or each feature's lower bound). */
  async selfTest(): Promise<void> {
    const { predictions } = await this.predict([exampleRow(this.manifest)]);
    const sum = predictions[0]!.probabilities.reduce((a, b) => a + b, 0);
    if (!Number.isFinite(sum)) throw new EngineError("inference_failed", "self-test produced non-finite probabilities");
  }

  async close() {
    await this.batcher.drain();
    await this.pool.close();
  }

  private async runBatch(blocks: RowBlock[]): Promise<Classification[][]> {
    const total = blocks.reduce((n, b) => n + b.count, 0);
    const data = new Float32Array(total * this.featureCount);
    let offset = 0;
    for (const b of blocks) {
      data.set(b.rows, offset);
      offset += b.rows.length;
    }
    const { input, output } = this.manifest.onnx;
    const outputs = await this.pool.run({ [input]: { type: "float32", dims: [total, this.featureCount], data } });
    const probabilities = outputs[output];
    const labels = this.manifest.labels;
    if (!probabilities || probabilities.data.length !== total * labels.length) {
      throw new EngineError("inference_failed", `output '${output}' does not hold ${total}x${labels.length} probabilities`);
    }
    const values = probabilities.data as Float32Array;
    let row = 0;
    return blocks.map((b) =>
      Array.from({ length: b.count }, () => {
        const p = Array.from(values.subarray(row * labels.length, ++row * labels.length));
        const best = p.indexOf(Math.max(...p));
        return { class: best, label: labels[best]!, probabilities: p };
      }),
    );
  }
}

/** Fails the load when the graph's input/output names or widths disagree with the manifest. */
function checkSignature(manifest: TabularManifest, pool: SessionPool) {
  const input = pool.inputs.find((i) => i.name === manifest.onnx.input);
  const output = pool.outputs.find((o) => o.name === manifest.onnx.output);
  const problem = (msg: string) => new EngineError("load_failed", `${manifest.name}: ${msg}`);
  if (!input) throw problem(`the graph has no input '${manifest.onnx.input}' (it has ${pool.inputs.map((i) => i.name).join(", ")})`);
  if (!output) throw problem(`the graph has no output '${manifest.onnx.output}' (it has ${pool.outputs.map((o) => o.name).join(", ")})`);
  const width = (shape: (number | string)[]) => shape[1];
  if (typeof width(input.shape) === "number" && width(input.shape) !== manifest.features.length) {
    throw problem(`the graph takes ${width(input.shape)} features, the manifest lists ${manifest.features.length}`);
  }
  if (typeof width(output.shape) === "number" && width(output.shape) !== manifest.labels.length) {
    throw problem(`the graph returns ${width(output.shape)} probabilities, the manifest lists ${manifest.labels.length} labels`);
  }
}
