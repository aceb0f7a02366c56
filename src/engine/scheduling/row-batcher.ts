/**
 * A model's one way to run: requests of whole rows (the first dimension of every input and output is the batch)
 * join micro-batches and run on the model's session pool. Tabular rows, images and raw protocol tensors all come
 * through here, so they share the same batches, queue limit and admission.
 */
import { EngineError } from "../errors.ts";
import type { Feeds, Outputs, SessionPool } from "../execution/session-pool.ts";
import type { TensorData, TensorInfo, TensorValues } from "../execution/session-protocol.ts";
import { MicroBatcher, type BatchTiming, type MicroBatcherOptions } from "./batcher.ts";

export type BatchingOptions = Omit<MicroBatcherOptions, "concurrency">;

/** A request's own rows of every output, and where its time went. */
export type RowResult = { outputs: Outputs; timing: BatchTiming };

type RowRequest = { feeds: Feeds; rows: number; key: string };

export class RowBatcher {
  private readonly batcher: MicroBatcher<RowRequest, Outputs>;
  /** Some input has a free dimension besides the batch: only requests of the same shape may share a run. */
  private readonly shapesVary: boolean;

  constructor(
    private readonly pool: SessionPool,
    batching: BatchingOptions,
  ) {
    this.batcher = new MicroBatcher((requests) => this.runBatch(requests), { ...batching, concurrency: pool.size }, (r) => r.rows);
    this.shapesVary = pool.inputs.some((input) => input.shape.slice(1).some((size) => typeof size !== "number" || size < 0));
  }

  /** The graph's inputs and outputs, as ONNX Runtime reports them (`-1` or a name for a free dimension). */
  get inputs(): TensorInfo[] {
    return this.pool.inputs;
  }
  get outputs(): TensorInfo[] {
    return this.pool.outputs;
  }

  /**
   * Runs `feeds` (every graph input, each with the same number of rows first) in a batch with other requests and
   * returns this request's rows of every output. Throws invalid_input, naming the tensor, for feeds that do not
   * fit the graph: a missing or unknown input, another type, another rank, a fixed dimension of another size, or
   * values that do not fill the shape. (Async, so a refusal rejects the promise like any other failure.)
   */
  async run(feeds: Feeds): Promise<RowResult> {
    const rows = this.check(feeds);
    const key = this.shapesVary ? shapeKey(feeds) : "";
    const { result, timing } = await this.batcher.submit({ feeds, rows, key });
    return { outputs: result, timing };
  }

  async close() {
    await this.batcher.drain();
    await this.pool.close();
  }

  /** The request's row count; throws invalid_input for feeds that do not fit the graph. Every request runs it. */
  private check(feeds: Feeds): number {
    const inputs = this.pool.inputs;
    for (const name in feeds) {
      if (!inputs.some((i) => i.name === name)) throw invalid(`the model has no input '${name}'; its inputs are ${inputs.map((i) => `'${i.name}'`).join(", ")}`);
    }
    let rows: number | undefined;
    for (const input of inputs) {
      const tensor = feeds[input.name];
      if (!tensor) throw invalid(`input '${input.name}' is missing`);
      if (tensor.type !== input.type) throw invalid(`input '${input.name}' is ${input.type}, not ${tensor.type}`);
      if (tensor.dims.length !== input.shape.length) {
        throw invalid(`input '${input.name}' has ${input.shape.length} dimensions [${shapeText(input.shape)}], not ${tensor.dims.length} [${tensor.dims.join(", ")}]`);
      }
      for (let axis = 0; axis < input.shape.length; axis++) {
        const size = input.shape[axis];
        if (typeof size === "number" && size >= 0 && tensor.dims[axis] !== size) {
          throw invalid(`input '${input.name}' has shape [${shapeText(input.shape)}]; dimension ${axis} is ${tensor.dims[axis]}, not ${size}`);
        }
      }
      let count = 1;
      for (const size of tensor.dims) count *= size;
      if (tensor.data.length !== count) throw invalid(`input '${input.name}' has shape [${tensor.dims.join(", ")}], which holds ${count} values, but ${tensor.data.length} were given`);
      const inputRows = tensor.dims[0]!;
      if (rows !== undefined && inputRows !== rows) throw invalid(`every input must have the same batch size: '${input.name}' has ${inputRows} rows, others ${rows}`);
      rows = inputRows;
    }
    if (!rows) throw invalid("the batch is empty: the first dimension of every input must be at least 1");
    return rows;
  }

  private async runBatch(requests: RowRequest[]): Promise<Outputs[]> {
    if (!this.shapesVary) return splitOutputs(await this.pool.run(requests.length === 1 ? requests[0]!.feeds : concatFeeds(requests)), requests.map((r) => r.rows));
    // Requests whose inputs differ beyond the batch dimension cannot share a run: one run per shape.
    const groups = new Map<string, number[]>();
    requests.forEach((r, i) => {
      const group = groups.get(r.key);
      if (group) group.push(i);
      else groups.set(r.key, [i]);
    });
    const results: Outputs[] = new Array(requests.length);
    await Promise.all(
      [...groups.values()].map(async (members) => {
        const batch = members.map((i) => requests[i]!);
        const outputs = await this.pool.run(batch.length === 1 ? batch[0]!.feeds : concatFeeds(batch));
        const split = splitOutputs(outputs, batch.map((r) => r.rows));
        members.forEach((i, k) => (results[i] = split[k]!));
      }),
    );
    return results;
  }
}

const invalid = (message: string) => new EngineError("invalid_input", message);

/** The dimensions after the batch of every input, which requests sharing a run must have in common. */
function shapeKey(feeds: Feeds): string {
  let key = "";
  for (const name in feeds) key += `${name}:${feeds[name]!.dims.slice(1).join("x")};`;
  return key;
}

/** `-1` for a free dimension, as the inference protocols write it. */
function shapeText(shape: (number | string)[]): string {
  return shape.map((d) => (typeof d === "number" && d >= 0 ? d : -1)).join(", ");
}

/** One feed per input, the requests' rows one after another. */
function concatFeeds(requests: RowRequest[]): Feeds {
  const feeds: Feeds = {};
  const total = requests.reduce((n, r) => n + r.rows, 0);
  for (const [name, first] of Object.entries(requests[0]!.feeds)) {
    const parts = requests.map((r) => r.feeds[name]!.data);
    feeds[name] = { type: first.type, dims: [total, ...first.dims.slice(1)], data: concatValues(parts) };
  }
  return feeds;
}

function concatValues(parts: TensorValues[]): TensorValues {
  const first = parts[0]!;
  if (Array.isArray(first)) return (parts as string[][]).flat();
  const length = parts.reduce((n, p) => n + p.length, 0);
  const out = new (first.constructor as new (n: number) => Exclude<TensorValues, string[]>)(length);
  let offset = 0;
  for (const part of parts as Exclude<TensorValues, string[]>[]) {
    (out as Float32Array).set(part as Float32Array, offset);
    offset += part.length;
  }
  return out;
}

/** Each request's rows of every output; an output without the batch's rows first goes whole to everyone. */
function splitOutputs(outputs: Outputs, rows: number[]): Outputs[] {
  if (rows.length === 1) return [outputs];
  const total = rows.reduce((a, b) => a + b, 0);
  const split: Outputs[] = rows.map(() => ({}));
  for (const [name, tensor] of Object.entries(outputs)) {
    if (tensor.dims[0] !== total) {
      for (const out of split) out[name] = tensor;
      continue;
    }
    const perRow = total === 0 ? 0 : tensor.data.length / total;
    let row = 0;
    rows.forEach((n, i) => {
      const start = row * perRow;
      const end = (row + n) * perRow;
      const data = Array.isArray(tensor.data) ? tensor.data.slice(start, end) : (tensor.data as Float32Array).subarray(start, end);
      split[i]![name] = { type: tensor.type, dims: [n, ...tensor.dims.slice(1)], data } as TensorData;
      row += n;
    });
  }
  return split;
}
