/**
 * A worker thread that owns one ONNX Runtime session. onnxruntime-node's run() is a synchronous native call,
 * so running it here keeps the HTTP event loop free while a model computes.
 */
import { parentPort, workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import type { SessionRequest, SessionResponse, TensorData, WorkerInit } from "./session-protocol.ts";

const init = workerData as WorkerInit;
const port = parentPort!;

function send(message: SessionResponse, transfer: ArrayBuffer[] = []) {
  port.postMessage(message, transfer);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

let session: ort.InferenceSession;
try {
  session = await ort.InferenceSession.create(init.modelPath, {
    intraOpNumThreads: init.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
  });
  const meta = (list: readonly ort.InferenceSession.ValueMetadata[]) =>
    list.map((m) => ({ name: m.name, type: m.isTensor ? m.type : "unknown", shape: m.isTensor ? [...m.shape] : [] }));
  send({ kind: "loaded", inputs: meta(session.inputMetadata), outputs: meta(session.outputMetadata) });
} catch (error) {
  send({ kind: "load_error", message: describe(error) });
  process.exit(0);
}

port.on("message", async (request: SessionRequest) => {
  if (request.kind === "close") {
    await session.release();
    port.close();
    return;
  }
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(request.feeds)) feeds[name] = new ort.Tensor(t.type as "float32", t.data as Float32Array, t.dims);
    const results = await session.run(feeds);
    const outputs: Record<string, TensorData> = {};
    const transfer: ArrayBuffer[] = [];
    for (const [name, tensor] of Object.entries(results)) {
      const data = tensor.data as TensorData["data"];
      outputs[name] = { type: tensor.type, dims: [...tensor.dims], data };
      // Output buffers belong to this call alone, so they move to the caller without a copy.
      if (data.buffer instanceof ArrayBuffer && !transfer.includes(data.buffer)) transfer.push(data.buffer);
    }
    send({ kind: "result", id: request.id, outputs }, transfer);
  } catch (error) {
    send({ kind: "error", id: request.id, message: describe(error) });
  }
});
