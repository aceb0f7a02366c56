/** Shared by the text-generation tests: the tiny fixture model, a plain reference decoder, and event collection. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import * as ort from "onnxruntime-node";
import { readManifestOf, type TextGenerationManifest } from "../../src/engine/registry/manifest.ts";
import type { GenerationEvent, GenerationParams, TextGenerator, TextGeneratorOptions, Usage } from "../../src/engine/tasks/text/generator.ts";
import { textCodec, type TextCodec } from "../../src/engine/tasks/text/text-stream.ts";

export const TINY_LM = join(import.meta.dir, "..", "fixtures", "tiny-lm");
export const tinyManifest = (): TextGenerationManifest => readManifestOf(TINY_LM, "text-generation");

export const TEST_OPTIONS: TextGeneratorOptions = { maxStreams: 16, maxQueue: 32, maxGenerationMs: 30_000, intraOpThreads: 1 };

export function loadTokenizer(dir = TINY_LM): Tokenizer {
  return new Tokenizer(JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")), {});
}

/** The tiny model's tokenizer as generation uses it. */
export function tinyCodec(): TextCodec {
  const json = JSON.parse(readFileSync(join(TINY_LM, "tokenizer.json"), "utf8"));
  return textCodec(new Tokenizer(json, {}), json, tinyManifest().eos_token);
}

export const decode = (tokenizer: Tokenizer, ids: number[]) =>
  ids.length === 0 ? "" : tokenizer.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false });

/** Greedy decoding of at most maxTokens, refused if they do not fit in the context; nothing else asked. */
export const greedy = (prompt: string, maxTokens: number, stop: string[] = []): GenerationParams => ({
  prompt,
  maxTokens,
  fitToContext: false,
  temperature: 0,
  topK: 0,
  topP: 1,
  stop,
  presencePenalty: 0,
  frequencyPenalty: 0,
  logitBias: new Map(),
  minTokens: 0,
  ignoreEos: false,
});

export const sampled = (prompt: string, maxTokens: number, seed: number | undefined): GenerationParams => ({
  ...greedy(prompt, maxTokens),
  temperature: 0.9,
  topK: 40,
  topP: 0.95,
  ...(seed === undefined ? {} : { seed }),
});

export type Collected = {
  promptTokens: number;
  text: string;
  pieces: Extract<GenerationEvent, { type: "token" }>[];
  prompt?: Extract<GenerationEvent, { type: "prompt" }>;
  finishReason: string;
  usage: Usage;
};

/** Reads a generation's events, checking their order: an optional prompt event first, tokens, then done last. */
export async function collect(events: AsyncIterable<GenerationEvent>): Promise<Omit<Collected, "promptTokens">> {
  const pieces: Extract<GenerationEvent, { type: "token" }>[] = [];
  let prompt: Extract<GenerationEvent, { type: "prompt" }> | undefined;
  let done: Extract<GenerationEvent, { type: "done" }> | undefined;
  let first = true;
  for await (const event of events) {
    if (done) throw new Error("an event after done");
    if (event.type === "token") pieces.push(event);
    else if (event.type === "prompt") {
      if (!first) throw new Error("a prompt event after the first event");
      prompt = event;
    } else done = event;
    first = false;
  }
  if (!done) throw new Error("the events ended without done");
  return { text: pieces.map((p) => p.text).join(""), pieces, ...(prompt ? { prompt } : {}), finishReason: done.finishReason, usage: done.usage };
}

export async function run(generator: TextGenerator, params: GenerationParams): Promise<Collected> {
  const { promptTokens, events } = await generator.generate(params);
  return { promptTokens, ...(await collect(events)) };
}

/** Resolves once the generator's stats satisfy `ok` (checked now and after every update from the worker). */
export function statsReach(generator: TextGenerator, ok: (s: ReturnType<TextGenerator["stats"]>) => boolean): Promise<void> {
  if (ok(generator.stats())) return Promise.resolve();
  return new Promise((resolve) => {
    const off = generator.onStats((s) => {
      if (ok(s)) {
        off();
        resolve();
      }
    });
  });
}

/**
 * The plain way to decode greedily: onnxruntime-node directly, batch 1, a KV cache, no batching, no worker.
 * Stops at EOS (unless told not to), at maxTokens, or when prompt + completion reach the context length.
 */
export class ReferenceDecoder {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly tokenizer: Tokenizer,
    private readonly manifest: TextGenerationManifest,
  ) {}

  static async load(dir = TINY_LM): Promise<ReferenceDecoder> {
    const session = await ort.InferenceSession.create(join(dir, "model.onnx"), { intraOpNumThreads: 1 });
    return new ReferenceDecoder(session, loadTokenizer(dir), readManifestOf(dir, "text-generation"));
  }

  async greedy(
    prompt: string,
    maxTokens: number,
    options: {
      /** Changes a copy of each step's logits before the argmax, given the tokens generated so far. */
      adjust?: (logits: Float32Array, generated: readonly number[]) => void;
      /** The EOS token does not stop it. */
      ignoreEos?: boolean;
    } = {},
  ): Promise<{ promptIds: number[]; ids: number[]; text: string; finishReason: "stop" | "length" }> {
    const promptIds = this.tokenizer.encode(prompt).ids;
    const eos = this.manifest.eos_token === undefined ? undefined : this.tokenizer.token_to_id(this.manifest.eos_token);
    const pastNames = this.session.inputNames.filter((n) => n.startsWith("past_key_values."));
    const meta = this.session.inputMetadata.find((m) => m.name === pastNames[0]);
    if (!meta?.isTensor) throw new Error("no past_key_values input");
    const [, heads, , headDim] = meta.shape as [unknown, number, unknown, number];
    const i64 = (values: number[]) => new ort.Tensor("int64", BigInt64Array.from(values, BigInt), [1, values.length]);
    let past: Record<string, ort.Tensor> = {};
    for (const name of pastNames) past[name] = new ort.Tensor("float32", new Float32Array(0), [1, heads, 0, headDim]);

    const ids: number[] = [];
    let input = promptIds;
    let length = 0;
    for (;;) {
      const out = await this.session.run({
        input_ids: i64(input),
        attention_mask: i64(Array(length + input.length).fill(1)),
        position_ids: i64(input.map((_, i) => length + i)),
        ...past,
      });
      length += input.length;
      past = Object.fromEntries(pastNames.map((n) => [n, out[n.replace("past_key_values.", "present.")]!]));
      const logits = out.logits!;
      const vocab = logits.dims[2]!;
      let last = (logits.data as Float32Array).subarray((input.length - 1) * vocab, input.length * vocab);
      if (options.adjust) {
        last = Float32Array.from(last);
        options.adjust(last, ids);
      }
      let next = 0;
      for (let i = 1; i < vocab; i++) if (last[i]! > last[next]!) next = i;
      ids.push(next);
      if (next === eos && !options.ignoreEos) return { promptIds, ids, text: decode(this.tokenizer, ids.slice(0, -1)), finishReason: "stop" };
      if (ids.length >= maxTokens || promptIds.length + ids.length >= this.manifest.context_length) {
        return { promptIds, ids, text: decode(this.tokenizer, ids), finishReason: "length" };
      }
      input = [next];
    }
  }

  /** The logits at every position of `ids` run as one sequence from an empty cache: [ids.length × vocab]. */
  async logits(ids: number[]): Promise<Float32Array> {
    const i64 = (values: number[]) => new ort.Tensor("int64", BigInt64Array.from(values, BigInt), [1, values.length]);
    const feeds: Record<string, ort.Tensor> = { input_ids: i64(ids), attention_mask: i64(ids.map(() => 1)), position_ids: i64(ids.map((_, i) => i)) };
    for (const m of this.session.inputMetadata) {
      if (m.isTensor && m.name.startsWith("past_key_values.")) feeds[m.name] = new ort.Tensor("float32", new Float32Array(0), [1, m.shape[1] as number, 0, m.shape[3] as number]);
    }
    const out = await this.session.run(feeds);
    return Float32Array.from(out.logits!.data as Float32Array);
  }

  async close() {
    await this.session.release();
  }
}

/** log-softmax of one row of logits, the plain way (for checking the engine's log-probabilities). */
export function logSoftmax(row: ArrayLike<number>): number[] {
  const values = Array.from(row);
  const max = Math.max(...values);
  const log = Math.log(values.reduce((sum, v) => sum + Math.exp(v - max), 0));
  return values.map((v) => v - max - log);
}
