/** KvBatch in-process on the tiny fixture LM: the graph it reads, and batched rows computing what each would alone. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { openSession } from "../../../../../src/engine/execution/onnx-session.ts";
import { KvBatch } from "../../../../../src/engine/tasks/text/kv-batch.ts";
import { argmax } from "../../../../../src/engine/tasks/text/sampling.ts";
import { ReferenceDecoder, TINY_LM, tinyManifest } from "../../../../helpers/text-model.ts";

const MODELS = join(import.meta.dir, "..", "..", "..", "..", "..", "models");

let reference: ReferenceDecoder;
const opened: KvBatch[] = [];

beforeAll(async () => {
  reference = await ReferenceDecoder.load();
});
afterAll(async () => {
  await Promise.all([reference?.close(), ...opened.map((b) => b.release())]);
});

async function open(): Promise<KvBatch> {
  const batch = new KvBatch(await openSession(join(TINY_LM, "model.onnx"), 1), () => 512);
  opened.push(batch);
  return batch;
}

const ids = (text: string) => reference.tokenizer.encode(text).ids;

/** The largest difference between two rows of logits. */
const distance = (a: Float32Array, b: Float32Array) => {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};

describe("the model's shape", () => {
  test("is read from the ONNX graph, not assumed: the tiny model's own layers, key/value heads, head size and vocabulary", async () => {
    const architecture = tinyManifest().architecture as { n_layer: number; n_kv_head: number; head_dim: number; vocab_size: number };
    const batch = await open();
    expect(batch.shape).toEqual({ layers: architecture.n_layer, kvHeads: architecture.n_kv_head, headDim: architecture.head_dim, vocab: architecture.vocab_size });
    expect(batch.vocab).toBe(architecture.vocab_size);
    // The fixture is deliberately unlike kjv-gpt, whose shape the same reading must find instead.
    const kjv = JSON.parse(readFileSync(join(MODELS, "kjv-gpt", "model.json"), "utf8")).architecture;
    const big = new KvBatch(await openSession(join(MODELS, "kjv-gpt", "model.onnx"), 1), () => 0);
    opened.push(big);
    expect(big.shape).toEqual({ layers: kjv.n_layer, kvHeads: kjv.n_kv_head, headDim: kjv.head_dim, vocab: kjv.vocab_size });
    expect(big.shape).not.toEqual(batch.shape);
  });

  test("a graph that is not a decoder with past is refused, naming what is missing", async () => {
    const session = await ort.InferenceSession.create(join(MODELS, "iris", "model.onnx"));
    try {
      expect(() => new KvBatch(session, () => 0)).toThrow("the graph has no input past_key_values.0.key: it is not a decoder-with-past export (inputs: input;");
    } finally {
      await session.release();
    }
  });
});

describe("batched rows", () => {
  test("a left-padded prefill gives each prompt its own logits at every position", async () => {
    const batch = await open();
    const prompts = ["In the beginning God created", "Jesus wept.", "And it came to pass"].map(ids);
    const logits = await batch.prefill(prompts.map((p, key) => ({ key, ids: p })));
    for (const [b, prompt] of prompts.entries()) {
      expect(logits[b]!.length).toBe(prompt.length * batch.vocab);
      expect(distance(logits[b]!, await reference.logits(prompt))).toBeLessThan(1e-4);
    }
  });

  test("decode steps, rows leaving and rows joining: every row's logits are those of its own sequence alone", async () => {
    const batch = await open();
    const sequences = new Map<number, number[]>();
    const rows: number[] = []; // the key of each row
    const join = async (prompts: Record<number, string>) => {
      const entries = Object.entries(prompts).map(([key, text]) => ({ key: Number(key), ids: ids(text) }));
      const logits = await batch.prefill(entries);
      entries.forEach((e, i) => sequences.set(e.key, [...e.ids, argmax(logits[i]!.subarray(logits[i]!.length - batch.vocab))]));
      return entries.map((e) => e.key);
    };
    const step = async () => {
      const logits = await batch.step(rows.map((key) => sequences.get(key)!.at(-1)!));
      for (const [b, key] of rows.entries()) {
        const sequence = sequences.get(key)!;
        const expected = (await reference.logits(sequence)).subarray((sequence.length - 1) * batch.vocab);
        expect(distance(logits[b]!, expected)).toBeLessThan(1e-4);
        sequence.push(argmax(logits[b]!));
      }
    };

    batch.rebuild([], await join({ 1: "In the beginning", 2: "The LORD is my shepherd; I shall not want." }));
    rows.push(1, 2);
    for (let i = 0; i < 3; i++) await step();
    // The longer row leaves (its columns trimmed), a newcomer joins shorter than the rest.
    const newcomers = await join({ 3: "Then" });
    batch.rebuild([0], newcomers);
    rows.splice(0, rows.length, 1, 3);
    expect(batch.rows).toBe(2);
    for (let i = 0; i < 4; i++) await step();
    // Nothing joins and every row stays: the batch goes on as it was.
    batch.rebuild([0, 1], []);
    await step();
  });

  test("each call frees the previous call's logits (they are garbage once read)", async () => {
    const batch = await open();
    const [logits] = await batch.prefill([{ key: 1, ids: ids("In the beginning") }]);
    expect(logits!.length).toBeGreaterThan(0);
    batch.rebuild([], [1]);
    expect(logits!.length).toBe(0); // detached: its memory went back to the allocator
    const [row] = await batch.step([5]);
    await batch.step([argmax(row!)]);
    expect(row!.length).toBe(0);
  });
});
