/**
 * The generation worker's protocol, driven directly: a cancelled stream leaves the batch before the next step.
 * Updates carry the step count, and the worker answers a cancel at once, so "before the next step" is visible
 * as: no event of the stream in any update after that answer.
 */
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { FromWorker, GenerationWorkerInit, StreamEvent, StreamRequest, ToWorker } from "../../../../../src/engine/tasks/text/protocol.ts";
import { greedy, TINY_LM, tinyManifest } from "../../../../helpers/text-model.ts";

const workers: Worker[] = [];
afterAll(() => Promise.all(workers.map((w) => w.terminate())));

function start(): { worker: Worker; updates: Extract<FromWorker, { kind: "update" }>[]; next: (ok: (m: FromWorker) => boolean) => Promise<FromWorker> } {
  const manifest = tinyManifest();
  const init: GenerationWorkerInit = {
    modelPath: join(TINY_LM, "model.onnx"),
    tokenizerPath: join(TINY_LM, manifest.tokenizer),
    contextLength: manifest.context_length,
    eosToken: manifest.eos_token!,
    maxStreams: 4,
    maxQueue: 4,
    maxGenerationMs: 30_000,
    intraOpThreads: 1,
  };
  const worker = new Worker(new URL("../../../../../src/engine/tasks/text/generation-worker.ts", import.meta.url), { workerData: init });
  workers.push(worker);
  const updates: Extract<FromWorker, { kind: "update" }>[] = [];
  const waiters: { ok: (m: FromWorker) => boolean; resolve: (m: FromWorker) => void }[] = [];
  worker.on("message", (m: FromWorker) => {
    if (m.kind === "update") updates.push(m);
    for (const w of waiters.filter((w) => w.ok(m))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(m);
    }
  });
  return { worker, updates, next: (ok) => new Promise((resolve) => waiters.push({ ok, resolve })) };
}

const request = (prompt: string, maxTokens: number): StreamRequest => ({ ...greedy(prompt, maxTokens), seed: 1 });
const eventsOf = (id: number, events: StreamEvent[]) => events.filter((e) => e.id === id);

test("a cancelled stream gets no step after the worker sees the cancel; its slot frees at once; the other runs on", async () => {
  const { worker, updates, next } = start();
  const send = (m: ToWorker) => worker.postMessage(m);
  await next((m) => m.kind === "loaded");

  send({ kind: "submit", id: 1, request: request("And it came to pass", 50) });
  send({ kind: "submit", id: 2, request: request("In the beginning", 40) });
  await next((m) => m.kind === "update" && eventsOf(1, m.events).some((e) => e.type === "token"));
  const sentAt = updates.length;
  send({ kind: "cancel", id: 1 });
  const done2 = await next((m) => m.kind === "update" && eventsOf(2, m.events).some((e) => e.type === "done"));

  // The answer to the cancel: the first update after it that counts one active stream.
  const answer = updates.findIndex((u, i) => i >= sentAt && u.stats.active === 1);
  expect(answer).toBeGreaterThanOrEqual(sentAt);
  const after = updates.slice(answer);
  expect(after.flatMap((u) => eventsOf(1, u.events))).toEqual([]);
  expect(updates.flatMap((u) => eventsOf(1, u.events)).some((e) => e.type === "done")).toBe(false);
  expect(after.every((u) => u.stats.active <= 1)).toBe(true);
  expect(done2.kind === "update" && eventsOf(2, done2.events).find((e) => e.type === "done")).toMatchObject({
    finishReason: "length",
    usage: { completionTokens: 40 },
  });
  expect(updates.at(-1)!.stats).toMatchObject({ active: 0, queued: 0 });

  send({ kind: "close" });
  await new Promise((resolve) => worker.once("exit", resolve));
});

test("a bad request is rejected with the reason before anything is queued", async () => {
  const { worker, next } = start();
  await next((m) => m.kind === "loaded");
  worker.postMessage({ kind: "submit", id: 7, request: request("Then ".repeat(80), 5) } satisfies ToWorker);
  const answer = await next((m) => m.kind === "rejected" || m.kind === "accepted");
  expect(answer).toMatchObject({ kind: "rejected", id: 7, code: "invalid_input" });
  worker.postMessage({ kind: "close" } satisfies ToWorker);
  await new Promise((resolve) => worker.once("exit", resolve));
});
