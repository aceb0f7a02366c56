/**
 * The worker thread of one text-generation model: it loads the tokenizer and the ONNX session, and runs a
 * GenerationScheduler (scheduler.ts) over a KvBatch (kv-batch.ts) with the main thread's messages.
 */
import { readFileSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { Tokenizer } from "@huggingface/tokenizers";
import { openSession } from "../../execution/onnx-session.ts";
import { KvBatch } from "./kv-batch.ts";
import type { FromWorker, GenerationWorkerInit, ToWorker } from "./protocol.ts";
import { GenerationScheduler } from "./scheduler.ts";
import { textCodec } from "./text-stream.ts";

const init = workerData as GenerationWorkerInit;
const port = parentPort!;
const send = (message: FromWorker) => port.postMessage(message);

let batch: KvBatch;
let scheduler: GenerationScheduler;
try {
  const json = JSON.parse(readFileSync(init.tokenizerPath, "utf8"));
  const tokenizer = new Tokenizer(json, {});
  const codec = textCodec(tokenizer, json, init.eosToken);
  batch = new KvBatch(await openSession(init.modelPath, init.intraOpThreads), () => tokenizer.get_vocab(true).size);
  scheduler = new GenerationScheduler(batch, codec, init, send);
  send({ kind: "loaded" });
} catch (error) {
  send({ kind: "load_error", message: error instanceof Error ? error.message : String(error) });
  process.exit(0);
}

port.on("message", (message: ToWorker) => {
  if (message.kind === "submit") scheduler.submit(message.id, message.request);
  else if (message.kind === "cancel") scheduler.cancel(message.id);
  else if (message.kind === "close") scheduler.close();
});

await scheduler.run();
await batch.release();
port.close();
