/**
 * A worker thread that owns one ONNX Runtime session. onnxruntime-node's run() is a synchronous native call,
 * so running it here keeps the HTTP event loop free while a model computes.
 */
import { parentPort, workerData } from "node:worker_threads";
import type * as ort from "onnxruntime-node";
import { describeValues, openSession, runSession } from "./onnx-session.ts";
import type { SessionRequest, SessionResponse, WorkerInit } from "./session-protocol.ts";
import { transferList } from "./worker-host.ts";

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
  session = await openSession(init.modelPath, init.intraOpThreads);
  send({ kind: "loaded", inputs: describeValues(session.inputMetadata), outputs: describeValues(session.outputMetadata) });
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
    const outputs = await runSession(session, request.feeds);
    // Output buffers belong to this call alone, so they move to the caller without a copy.
    send({ kind: "result", id: request.id, outputs }, transferList(outputs));
  } catch (error) {
    send({ kind: "error", id: request.id, message: describe(error) });
  }
});
