/** Opening an ONNX Runtime session and moving tensors in and out of it: shared by worker threads and inline sessions. */
import * as ort from "onnxruntime-node";
import type { TensorData, TensorInfo } from "./session-protocol.ts";

/** Opens a model from its path, or from its bytes already read. */
export function openSession(model: string | Uint8Array, intraOpThreads: number): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
  };
  // Two calls because create() is overloaded on its first argument's type.
  return typeof model === "string" ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model, options);
}

/** The session's inputs or outputs, as ONNX Runtime reports them. */
export function describeValues(list: readonly ort.InferenceSession.ValueMetadata[]): TensorInfo[] {
  return list.map((m) => ({ name: m.name, type: m.isTensor ? m.type : "unknown", shape: m.isTensor ? [...m.shape] : [] }));
}

/** One run: plain tensor data in, plain tensor data out (the output buffers belong to this call alone). */
export async function runSession(session: ort.InferenceSession, feeds: Record<string, TensorData>): Promise<Record<string, TensorData>> {
  const tensors: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) tensors[name] = new ort.Tensor(t.type as "float32", t.data as Float32Array, t.dims);
  const results = await session.run(tensors);
  const outputs: Record<string, TensorData> = {};
  for (const [name, tensor] of Object.entries(results)) outputs[name] = { type: tensor.type, dims: [...tensor.dims], data: tensor.data as TensorData["data"] };
  return outputs;
}

/**
 * Frees a tensor's buffer now instead of at some later garbage collection, for outputs that are garbage as soon
 * as the next run has read them (a decoder's KV cache: megabytes per step at batch 16). Left to the collector,
 * the process's memory rises and falls with its timing, and each freshly mapped page costs a page fault (dear on
 * a virtual machine: docs/performance.md has the figures); freed at once, the next run's outputs reuse the
 * same memory. It detaches the view's whole buffer, so it is only for views that own theirs, as ONNX Runtime's
 * outputs do. Runtimes without ArrayBuffer.prototype.transfer (Node < 21) leave it to the collector.
 */
export function freeBuffer(data: ArrayBufferView | undefined) {
  const buffer = data?.buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };
  buffer?.transfer?.(0);
}
