/**
 * The row batcher over a fake session pool that records every run and answers each row with its own values: how
 * requests are joined into one run, how the run's outputs are split back by rows, which requests may not share a
 * run, and every refusal of feeds that do not fit the graph.
 */
import { describe, expect, test } from "bun:test";
import { EngineError } from "../../../../src/engine/errors.ts";
import type { Feeds, Outputs, SessionPool } from "../../../../src/engine/execution/session-pool.ts";
import type { TensorInfo } from "../../../../src/engine/execution/session-protocol.ts";
import { RowBatcher } from "../../../../src/engine/scheduling/row-batcher.ts";

/**
 * A pool whose one output per row is the row's sum ("sum", float32 [rows]) and the row's values doubled
 * ("double", the input's shape), plus "count", a tensor without the batch's rows first ([1]: how many rows ran).
 */
class FakePool {
  readonly runs: Feeds[] = [];
  readonly size = 1;
  constructor(
    readonly inputs: TensorInfo[],
    readonly outputs: TensorInfo[] = [],
  ) {}

  async run(feeds: Feeds): Promise<Outputs> {
    this.runs.push(feeds);
    const x = Object.values(feeds)[0]!;
    const rows = x.dims[0]!;
    const values = x.data as Float32Array;
    const width = values.length / rows;
    const sum = new Float32Array(rows);
    for (let r = 0; r < rows; r++) for (let i = 0; i < width; i++) sum[r]! += values[r * width + i]!;
    return {
      sum: { type: "float32", dims: [rows], data: sum },
      double: { type: "float32", dims: [...x.dims], data: values.map((v) => v * 2) },
      count: { type: "int64", dims: [1], data: BigInt64Array.of(BigInt(rows)) },
    };
  }

  async close() {}
}

const batcherOver = (pool: FakePool, maxBatchSize = 32) =>
  new RowBatcher(pool as unknown as SessionPool, { maxBatchSize, maxWaitMs: 20, maxQueue: 100 });

const rowsOf = (rows: number[][]) => ({ type: "float32", dims: [rows.length, rows[0]!.length], data: Float32Array.from(rows.flat()) });

describe("requests that arrive together", () => {
  test("run as one ONNX call holding every request's rows, in order", async () => {
    const pool = new FakePool([{ name: "x", type: "float32", shape: ["batch", 2] }]);
    const batcher = batcherOver(pool);
    const [a, b] = await Promise.all([batcher.run({ x: rowsOf([[1, 2]]) }), batcher.run({ x: rowsOf([[3, 4], [5, 6]]) })]);
    expect(pool.runs).toHaveLength(1);
    expect(pool.runs[0]!.x!.dims).toEqual([3, 2]);
    expect([...(pool.runs[0]!.x!.data as Float32Array)]).toEqual([1, 2, 3, 4, 5, 6]);
    // Each gets its own rows of every output, with the batch dimension set to its row count.
    expect(a!.outputs.sum).toEqual({ type: "float32", dims: [1], data: Float32Array.of(3) });
    expect(b!.outputs.sum).toEqual({ type: "float32", dims: [2], data: Float32Array.of(7, 11) });
    expect(a!.outputs.double).toEqual({ type: "float32", dims: [1, 2], data: Float32Array.of(2, 4) });
    expect(b!.outputs.double).toEqual({ type: "float32", dims: [2, 2], data: Float32Array.of(6, 8, 10, 12) });
  });

  test("an output without the batch's rows first goes whole to every request", async () => {
    const pool = new FakePool([{ name: "x", type: "float32", shape: ["batch", 2] }]);
    const batcher = batcherOver(pool);
    const [a, b] = await Promise.all([batcher.run({ x: rowsOf([[1, 2]]) }), batcher.run({ x: rowsOf([[3, 4], [5, 6], [7, 8]]) })]);
    expect(a!.outputs.count).toEqual({ type: "int64", dims: [1], data: BigInt64Array.of(4n) });
    expect(b!.outputs.count).toEqual({ type: "int64", dims: [1], data: BigInt64Array.of(4n) });
  });

  test("string inputs are joined too", async () => {
    const runs: Feeds[] = [];
    const pool = {
      size: 1,
      inputs: [{ name: "text", type: "string", shape: ["batch"] }],
      outputs: [],
      run: async (feeds: Feeds): Promise<Outputs> => {
        runs.push(feeds);
        const text = feeds.text!.data as string[];
        return { upper: { type: "string", dims: [text.length], data: text.map((t) => t.toUpperCase()) } };
      },
      close: async () => {},
    };
    const batcher = new RowBatcher(pool as unknown as SessionPool, { maxBatchSize: 32, maxWaitMs: 20, maxQueue: 100 });
    const [a, b] = await Promise.all([
      batcher.run({ text: { type: "string", dims: [1], data: ["in"] } }),
      batcher.run({ text: { type: "string", dims: [2], data: ["the", "beginning"] } }),
    ]);
    expect(runs).toHaveLength(1);
    expect(runs[0]!.text!.data).toEqual(["in", "the", "beginning"]);
    expect(a!.outputs.upper!.data).toEqual(["IN"]);
    expect(b!.outputs.upper).toEqual({ type: "string", dims: [2], data: ["THE", "BEGINNING"] });
  });

  test("requests whose dimensions beyond the batch differ (a free dimension) run apart, each in its own call", async () => {
    const pool = new FakePool([{ name: "x", type: "float32", shape: ["batch", "width"] }]);
    const batcher = batcherOver(pool);
    const [a, b, c] = await Promise.all([batcher.run({ x: rowsOf([[1, 2]]) }), batcher.run({ x: rowsOf([[1, 2, 3]]) }), batcher.run({ x: rowsOf([[3, 4]]) })]);
    expect(pool.runs.map((r) => r.x!.dims).sort()).toEqual([
      [1, 3],
      [2, 2],
    ]);
    expect(a!.outputs.sum!.data).toEqual(Float32Array.of(3));
    expect(b!.outputs.sum!.data).toEqual(Float32Array.of(6));
    expect(c!.outputs.sum!.data).toEqual(Float32Array.of(7));
  });
});

describe("feeds that do not fit the graph are refused with invalid_input, naming the tensor", () => {
  const graph: TensorInfo[] = [
    { name: "x", type: "float32", shape: [-1, 2] },
    { name: "mask", type: "bool", shape: ["batch"] },
  ];
  const x = (dims: number[], data: number[]) => ({ type: "float32", dims, data: Float32Array.from(data) });
  const mask = (dims: number[], data: number[]) => ({ type: "bool", dims, data: Uint8Array.from(data) });

  test.each([
    ["an unknown input", { x: x([1, 2], [1, 2]), mask: mask([1], [1]), y: x([1, 2], [1, 2]) }, "the model has no input 'y'; its inputs are 'x', 'mask'"],
    ["a missing input", { x: x([1, 2], [1, 2]) }, "input 'mask' is missing"],
    ["another type", { x: { type: "float64", dims: [1, 2], data: Float64Array.of(1, 2) }, mask: mask([1], [1]) }, "input 'x' is float32, not float64"],
    ["another rank", { x: x([2], [1, 2]), mask: mask([1], [1]) }, "input 'x' has 2 dimensions [-1, 2], not 1 [2]"],
    ["a fixed dimension of another size", { x: x([1, 3], [1, 2, 3]), mask: mask([1], [1]) }, "input 'x' has shape [-1, 2]; dimension 1 is 3, not 2"],
    ["values that do not fill the shape", { x: x([2, 2], [1, 2, 3]), mask: mask([2], [1, 0]) }, "input 'x' has shape [2, 2], which holds 4 values, but 3 were given"],
    ["batch sizes that differ", { x: x([2, 2], [1, 2, 3, 4]), mask: mask([1], [1]) }, "every input must have the same batch size: 'mask' has 1 rows, others 2"],
    ["an empty batch", { x: x([0, 2], []), mask: mask([0], []) }, "the batch is empty: the first dimension of every input must be at least 1"],
  ])("%s", async (_, feeds, message) => {
    const pool = new FakePool(graph);
    const error = await batcherOver(pool)
      .run(feeds as Feeds)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect((error as EngineError).code).toBe("invalid_input");
    expect((error as EngineError).message).toBe(message);
    expect(pool.runs).toHaveLength(0);
  });
});
