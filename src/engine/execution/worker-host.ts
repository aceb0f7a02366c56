/**
 * The main thread's side of a worker thread that loads a model: the load handshake, and moving tensors to a
 * worker without a copy. Shared by the session pool's workers and the text generator's.
 */
import { Worker } from "node:worker_threads";
import { EngineError } from "../errors.ts";

/** A model-loading worker's first message: "loaded" (with whatever it reports of the model) or "load_error". */
export type LoadAnswer = { kind: "loaded" } | { kind: "load_error"; message: string };

/**
 * Starts a worker thread that loads a model, and waits for its "loaded" message. Rejects with an EngineError
 * load_failed (and terminates the worker) if it answers "load_error", fails, or exits first. `label` (the
 * model's name or path) starts every failure message.
 */
export function startModelWorker<Loaded extends { kind: "loaded" }>(url: URL, workerData: unknown, label: string): Promise<{ worker: Worker; loaded: Loaded }> {
  const worker = new Worker(url, { workerData });
  return new Promise((resolve, reject) => {
    const fail = (message: string) => {
      cleanup();
      void worker.terminate();
      reject(new EngineError("load_failed", `${label}: ${message}`));
    };
    const onMessage = (message: Loaded | LoadAnswer) => {
      if (message.kind === "loaded") {
        cleanup();
        resolve({ worker, loaded: message as Loaded });
      } else if (message.kind === "load_error") fail(message.message);
    };
    const onError = (error: Error) => fail(error.message);
    const onExit = () => fail("the worker exited while loading");
    const cleanup = () => {
      worker.off("message", onMessage);
      worker.off("error", onError);
      worker.off("exit", onExit);
    };
    worker.on("message", onMessage);
    worker.on("error", onError);
    worker.on("exit", onExit);
  });
}

/**
 * The distinct buffers behind a record of tensors, for postMessage's transfer list: they move without a copy
 * and are unusable on the sending side afterwards, so only for tensors built or returned for one call.
 */
export function transferList(tensors: Record<string, { data: ArrayBufferView | string[] }>): ArrayBuffer[] {
  return [...new Set(Object.values(tensors).map((t) => (ArrayBuffer.isView(t.data) ? t.data.buffer : undefined)))].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
}
