/**
 * The model steps of continuous batching over one decoder-with-past ONNX session (Hugging Face Optimum's
 * convention): batched prefill, decode steps, and the running batch's KV cache.
 *
 * The running batch's cache is the previous step's `present.*` outputs, fed back unchanged as `past_key_values.*`.
 * Rows are aligned on the right (left padding): row b's real keys are the last `length_b` of the cache's
 * `pastLength` columns and the rest are zeros its attention mask hides; position_ids carry each row's own
 * positions. The cache is rebuilt (copied) only when membership changes: prompts prefilled together (one run per
 * group, left-padded the same way) are merged in, rows that ended are dropped, and leading columns that every
 * remaining row masks are trimmed.
 */
import * as ort from "onnxruntime-node";
import { freeBuffer } from "../../execution/onnx-session.ts";
import type { ModelSteps, Prompt } from "./scheduler.ts";

/** The model's shape as read from the ONNX graph's metadata. */
export type ModelShape = { layers: number; kvHeads: number; headDim: number; vocab: number };

/** What the engine needs to know of the graph. */
type Graph = ModelShape & { pastNames: string[]; presentNames: string[] };

/** Reads the graph's inputs and outputs; throws naming what is missing or unsupported. */
function readGraph(session: ort.InferenceSession, fallbackVocab: () => number): Graph {
  const tensors = (list: readonly ort.InferenceSession.ValueMetadata[]) =>
    new Map(list.map((m) => [m.name, m.isTensor ? { type: String(m.type), shape: [...m.shape] } : undefined]));
  const inputs = tensors(session.inputMetadata);
  const outputs = tensors(session.outputMetadata);
  const problem = (message: string) => new Error(`${message} (inputs: ${[...inputs.keys()].join(", ")}; outputs: ${[...outputs.keys()].join(", ")})`);

  let layers = 0;
  while (inputs.has(`past_key_values.${layers}.key`)) layers++;
  if (layers === 0) throw problem("the graph has no input past_key_values.0.key: it is not a decoder-with-past export");
  const pastNames: string[] = [];
  const presentNames: string[] = [];
  for (let i = 0; i < layers; i++) {
    for (const kind of ["key", "value"]) {
      pastNames.push(`past_key_values.${i}.${kind}`);
      presentNames.push(`present.${i}.${kind}`);
    }
  }
  for (const name of ["input_ids", "attention_mask", "position_ids"]) {
    if (!inputs.has(name)) throw problem(`the graph has no input '${name}' (left-padded batching needs it)`);
  }
  const known = new Set(["input_ids", "attention_mask", "position_ids", ...pastNames]);
  const unknown = [...inputs.keys()].filter((n) => !known.has(n));
  if (unknown.length > 0) throw problem(`the graph takes inputs this engine does not supply: ${unknown.join(", ")}`);
  for (const name of ["logits", ...presentNames]) if (!outputs.has(name)) throw problem(`the graph has no output '${name}'`);

  const first = inputs.get(pastNames[0]!)!;
  // Key/value heads: fewer than the query heads in a grouped- or multi-query model, which the engine need not know.
  const kvHeads = first.shape[1];
  const headDim = first.shape[3];
  if (typeof kvHeads !== "number" || typeof headDim !== "number") {
    throw problem(`${pastNames[0]} has shape [${first.shape.join(", ")}]; key/value heads (dim 1) and head size (dim 3) must be fixed`);
  }
  for (const name of [...pastNames, ...presentNames]) {
    const t = (inputs.get(name) ?? outputs.get(name))!;
    if (t.type !== "float32") throw problem(`${name} is ${t.type}; only float32 KV caches are supported`);
    if (t.shape.length !== 4 || t.shape[1] !== kvHeads || t.shape[3] !== headDim) {
      throw problem(`${name} has shape [${t.shape.join(", ")}], expected [batch, ${kvHeads}, length, ${headDim}]`);
    }
  }
  const logitsWidth = outputs.get("logits")!.shape[2];
  const vocab = typeof logitsWidth === "number" ? logitsWidth : fallbackVocab();
  return { layers, kvHeads, headDim, vocab, pastNames, presentNames };
}

const int64 = (values: BigInt64Array, dims: number[]) => new ort.Tensor("int64", values, dims);

/** Logits of every position of a [batch, sequence, vocab] output, checked. */
function logitsOf(output: ort.Tensor | undefined): { data: Float32Array; sequence: number; vocab: number } {
  if (!output || output.dims.length !== 3) throw new Error("the graph returned no [batch, sequence, vocab] logits");
  const [, sequence, vocab] = output.dims as [number, number, number];
  return { data: output.data as Float32Array, sequence, vocab };
}

/** A prefilled prompt waiting to join: row `row` of its group's present tensors, its `length` real columns last. */
type Waiting = { present: Float32Array[]; row: number; columns: number; length: number };

export class KvBatch implements ModelSteps {
  readonly shape: ModelShape;
  private readonly pastNames: string[];
  private readonly presentNames: string[];
  /** Tokens in each row's cache, in row order. */
  private lengths: number[] = [];
  private past: ort.Tensor[] = [];
  private pastLength = 0;
  private readonly waiting = new Map<number, Waiting>();
  /** The last run's logits, handed out until the next call. */
  private logits: Float32Array | undefined;

  /** Reads the graph (throws if it is not a decoder-with-past this engine can batch); `fallbackVocab` serves when the logits' width is symbolic. */
  constructor(
    private readonly session: ort.InferenceSession,
    fallbackVocab: () => number,
  ) {
    const { pastNames, presentNames, ...shape } = readGraph(session, fallbackVocab);
    this.shape = shape;
    this.pastNames = pastNames;
    this.presentNames = presentNames;
  }

  get vocab(): number {
    return this.shape.vocab;
  }

  /** Rows in the running batch. */
  get rows(): number {
    return this.lengths.length;
  }

  /**
   * Runs the prompts in one batch (left-padded to the longest, empty past) and keeps each one's cache aside
   * under its key until the next rebuild. Pads are masked out and sit at position 0; positions count only real
   * tokens, so each row computes what it would alone. Returns each prompt's logits, one row of `vocab` per
   * prompt token, valid until the next call.
   */
  async prefill(prompts: readonly Prompt[]): Promise<Float32Array[]> {
    this.freeLogits();
    const B = prompts.length;
    const S = Math.max(...prompts.map((p) => p.ids.length));
    const ids = new BigInt64Array(B * S); // pads: token 0
    const mask = new BigInt64Array(B * S);
    const positions = new BigInt64Array(B * S);
    prompts.forEach((prompt, b) => {
      const n = prompt.ids.length;
      const at = b * S + S - n;
      for (let i = 0; i < n; i++) {
        ids[at + i] = BigInt(prompt.ids[i]!);
        positions[at + i] = BigInt(i);
      }
      mask.fill(1n, at, (b + 1) * S);
    });
    const feeds: Record<string, ort.Tensor> = {
      input_ids: int64(ids, [B, S]),
      attention_mask: int64(mask, [B, S]),
      position_ids: int64(positions, [B, S]),
    };
    for (const name of this.pastNames) feeds[name] = new ort.Tensor("float32", new Float32Array(0), [B, this.shape.kvHeads, 0, this.shape.headDim]);
    const out = await this.session.run(feeds);
    const present = this.presentNames.map((name) => {
      const t = out[name];
      if (!t || t.dims[0] !== B || t.dims[2] !== S) throw new Error(`${name} has shape [${t?.dims.join(", ")}] after a prefill of ${B} × ${S} tokens`);
      return t.data as Float32Array;
    });
    const { data, sequence, vocab } = logitsOf(out.logits);
    this.logits = data;
    prompts.forEach((prompt, b) => this.waiting.set(prompt.key, { present, row: b, columns: S, length: prompt.ids.length }));
    return prompts.map((prompt, b) => data.subarray((b * sequence + sequence - prompt.ids.length) * vocab, (b + 1) * sequence * vocab));
  }

  /**
   * Makes the batch the rows at `keep` (ascending indices into the current rows), then the prefilled prompts
   * `join`, copying each row's real columns right-aligned; every other prefilled cache is dropped.
   */
  rebuild(keep: readonly number[], join: readonly number[]) {
    this.freeLogits();
    const joined = join.map((key) => {
      const waiting = this.waiting.get(key);
      if (!waiting) throw new Error(`no prefilled prompt ${key} to join the batch`);
      return waiting;
    });
    // Prefill groups' caches: the rows joining are copied below, and nothing else reads them.
    const prefilled = new Set([...this.waiting.values()].flatMap((w) => w.present));
    this.waiting.clear();
    if (joined.length > 0 || keep.length < this.lengths.length) {
      const lengths = [...keep.map((row) => this.lengths[row]!), ...joined.map((w) => w.length)];
      const length = Math.max(0, ...lengths);
      const { kvHeads: H, headDim: D } = this.shape;
      this.past = this.pastNames.map((_, n) => {
        const data = new Float32Array(lengths.length * H * length * D);
        const copy = (source: Float32Array, sourceRow: number, sourceLength: number, row: number, len: number) => {
          for (let h = 0; h < H; h++) {
            const from = ((sourceRow * H + h) * sourceLength + sourceLength - len) * D;
            data.set(source.subarray(from, from + len * D), ((row * H + h) * length + length - len) * D);
          }
        };
        keep.forEach((row, b) => copy(this.past[n]!.data as Float32Array, row, this.pastLength, b, this.lengths[row]!));
        joined.forEach((w, j) => copy(w.present[n]!, w.row, w.columns, keep.length + j, w.length));
        freeBuffer(this.past[n]?.data as Float32Array | undefined);
        return new ort.Tensor("float32", data, [lengths.length, H, length, D]);
      });
      this.lengths = lengths;
      this.pastLength = length;
    }
    for (const data of prefilled) freeBuffer(data);
  }

  /**
   * One decode step: row b feeds tokens[b]; the outputs become the cache as they are. Returns each row's
   * logits, valid until the next call. If the run fails the batch is dropped (every row with it).
   */
  async step(tokens: readonly number[]): Promise<Float32Array[]> {
    this.freeLogits();
    const B = this.lengths.length;
    const T = this.pastLength;
    const ids = new BigInt64Array(B);
    const positions = new BigInt64Array(B);
    const mask = new BigInt64Array(B * (T + 1));
    this.lengths.forEach((length, b) => {
      ids[b] = BigInt(tokens[b]!);
      positions[b] = BigInt(length);
      mask.fill(1n, b * (T + 1) + T - length, (b + 1) * (T + 1));
    });
    const feeds: Record<string, ort.Tensor> = {
      input_ids: int64(ids, [B, 1]),
      attention_mask: int64(mask, [B, T + 1]),
      position_ids: int64(positions, [B, 1]),
    };
    this.pastNames.forEach((name, n) => (feeds[name] = this.past[n]!));
    let logits: ReturnType<typeof logitsOf>;
    try {
      const out = await this.session.run(feeds);
      this.past = this.presentNames.map((name) => {
        const t = out[name];
        if (!t || t.dims[0] !== B || t.dims[2] !== T + 1) throw new Error(`${name} has shape [${t?.dims.join(", ")}], expected [${B}, ${this.shape.kvHeads}, ${T + 1}, ${this.shape.headDim}]`);
        return t;
      });
      logits = logitsOf(out.logits);
    } catch (error) {
      this.lengths = [];
      this.past = [];
      this.pastLength = 0;
      throw error;
    }
    for (const name of this.pastNames) freeBuffer(feeds[name]!.data as Float32Array);
    this.pastLength = T + 1;
    for (let b = 0; b < B; b++) this.lengths[b]!++;
    const { data, sequence, vocab } = logits;
    this.logits = data;
    const rows: Float32Array[] = [];
    for (let b = 0; b < B; b++) {
      const at = (b * sequence + sequence - 1) * vocab;
      rows.push(data.subarray(at, at + vocab));
    }
    return rows;
  }

  /** Frees the cache and releases the session. */
  async release() {
    this.rebuild([], []);
    for (const tensor of this.past) freeBuffer(tensor.data as Float32Array);
    this.past = [];
    this.lengths = [];
    this.pastLength = 0;
    await this.session.release();
  }

  private freeLogits() {
    freeBuffer(this.logits);
    this.logits = undefined;
  }
}
