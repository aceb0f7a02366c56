/**
 * A worker thread that owns one decoder-with-past ONNX session (Hugging Face Optimum's convention), the
 * tokenizer and every stream's KV cache, and runs continuous batching: streams join and leave between decode
 * steps, and each step is one batched ONNX run over all active streams.
 *
 * The running batch's cache is the previous step's `present.*` outputs, fed back unchanged as `past_key_values.*`.
 * Rows are aligned on the right (left padding): row b's real keys are the last `length_b` of the cache's
 * `pastLength` columns and the rest are zeros its attention mask hides; position_ids carry each row's own
 * positions. The cache is rebuilt (copied) only when membership changes: the newcomers admitted at one point are
 * prefilled together (one run per group, left-padded the same way) and merged in, rows that ended are dropped,
 * and leading columns that every remaining row masks are trimmed.
 */
import { readFileSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { Tokenizer } from "@huggingface/tokenizers";
import * as ort from "onnxruntime-node";
import type { FromWorker, GenerationWorkerInit, ModelShape, StreamEvent, StreamRequest, ToWorker } from "./protocol.ts";
import { freeBuffer, openSession } from "../../execution/onnx-session.ts";
import { prefillGroups, prefillTokenBudget } from "./prefill.ts";
import { sampleToken, seededRandom, type Random } from "./sampling.ts";
import { detokenizerFor, StopMatcher, type Detokenizer } from "./text-stream.ts";

const init = workerData as GenerationWorkerInit;
const port = parentPort!;
const send = (message: FromWorker) => port.postMessage(message);
const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** What the engine needs to know of the graph, all read from its metadata. */
type Graph = ModelShape & { pastNames: string[]; presentNames: string[] };

function readGraph(session: ort.InferenceSession, tokenizer: Tokenizer): Graph {
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
  const vocab = typeof logitsWidth === "number" ? logitsWidth : tokenizer.get_vocab(true).size;
  return { layers, kvHeads, headDim, vocab, contextLength: init.contextLength, pastNames, presentNames };
}

let session: ort.InferenceSession;
let tokenizer: Tokenizer;
let graph: Graph;
let eosId: number | undefined;
let newDetokenizer: () => Detokenizer;
try {
  const tokenizerJson = JSON.parse(readFileSync(init.tokenizerPath, "utf8"));
  tokenizer = new Tokenizer(tokenizerJson, {});
  newDetokenizer = detokenizerFor(tokenizer, tokenizerJson.decoder, (ids) =>
    ids.length === 0 ? "" : tokenizer.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false }),
  );
  if (init.eosToken !== undefined) {
    eosId = tokenizer.token_to_id(init.eosToken);
    if (eosId === undefined) throw new Error(`the eos_token '${init.eosToken}' is not in the tokenizer's vocabulary`);
  }
  session = await openSession(init.modelPath, init.intraOpThreads);
  graph = readGraph(session, tokenizer);
  const { layers, kvHeads, headDim, vocab, contextLength } = graph;
  send({ kind: "ready", shape: { layers, kvHeads, headDim, vocab, contextLength } });
} catch (error) {
  send({ kind: "load_error", message: describe(error) });
  process.exit(0);
}

/** Padded tokens one prefill run may take (see prefill.ts). */
const prefillBudget = prefillTokenBudget(graph.vocab);

type Stream = {
  id: number;
  request: StreamRequest;
  promptIds: number[];
  random: Random;
  decoder: Detokenizer;
  stopper: StopMatcher;
  state: "queued" | "active" | "ended";
  /** When it was admitted to the batch (its time limit counts from here). */
  startedAt: number;
  /** Tokens generated so far. */
  completion: number;
  /** Tokens in its KV cache. */
  length: number;
  /** The token to feed at the next step. */
  next: number;
  /**
   * Between prefill and merging into the batch: where its cache is, row `row` of its prefill group's present
   * tensors ([rows, kvHeads, columns, headDim] per past name), its `length` real columns being the last ones.
   */
  cache?: { present: Float32Array[]; row: number; columns: number };
};

const queue: Stream[] = [];
/** Streams holding a slot: in the batch, being prefilled or about to join. */
const active = new Map<number, Stream>();
/** The running batch: rows[b] is row b of every tensor in `past`. Rows that ended stay until the next rebuild. */
let rows: Stream[] = [];
let past: ort.Tensor[] = [];
let pastLength = 0;
let steps = 0;
let prefills = 0;
let events: StreamEvent[] = [];
let statsChanged = false;
let closing = false;
let wake: (() => void) | undefined;

/**
 * Posting wakes the main thread, which costs the worker tens of microseconds on a virtual machine: a tenth of a
 * small model's decode step. So updates go out at most every POST_EVERY_MS, except those a client or the server
 * waits on (a stream's first token, its end, a cancellation) and everything pending when the loop goes idle.
 */
const POST_EVERY_MS = 2;
let lastPostAt = -Infinity;
let urgent = false;

function postUpdate(now = false) {
  if (events.length === 0 && !statsChanged) return;
  if (!now && !urgent && performance.now() - lastPostAt < POST_EVERY_MS) return;
  send({ kind: "update", stats: { active: active.size, queued: queue.length, steps, prefills }, events });
  events = [];
  statsChanged = false;
  urgent = false;
  lastPostAt = performance.now();
}

function reject(id: number, code: "invalid_input" | "overloaded" | "not_ready", message: string, retryAfter?: number) {
  send({ kind: "rejected", id, code, message, ...(retryAfter === undefined ? {} : { retryAfter }) });
}

function submit(id: number, request: StreamRequest) {
  if (closing) return reject(id, "not_ready", "the model is being unloaded", 1);
  let promptIds: number[];
  try {
    promptIds = tokenizer.encode(request.prompt).ids;
  } catch (error) {
    return reject(id, "invalid_input", `the prompt cannot be tokenized: ${describe(error)}`);
  }
  const n = promptIds.length;
  const context = init.contextLength;
  if (n === 0) return reject(id, "invalid_input", "the prompt encodes to no tokens");
  if (n >= context) {
    return reject(id, "invalid_input", `the prompt is ${n} tokens; the model's context length is ${context} tokens, which leaves no room to generate`);
  }
  if (request.fitToContext) request = { ...request, maxTokens: Math.min(request.maxTokens, context - n) };
  if (n + request.maxTokens > context) {
    return reject(
      id,
      "invalid_input",
      `the prompt (${n} tokens) plus max_tokens (${request.maxTokens}) is ${n + request.maxTokens} tokens, more than the model's context length of ${context}; use max_tokens ≤ ${context - n} or a shorter prompt`,
    );
  }
  if (active.size + queue.length >= init.maxStreams + init.maxQueue) {
    return reject(id, "overloaded", `all ${init.maxStreams} generation slots are busy and the queue is full (${init.maxQueue} waiting)`, 1);
  }
  queue.push({
    id,
    request,
    promptIds,
    random: seededRandom(request.seed),
    decoder: newDetokenizer(),
    stopper: new StopMatcher(request.stop),
    state: "queued",
    startedAt: 0,
    completion: 0,
    length: 0,
    next: 0,
  });
  send({ kind: "accepted", id, promptTokens: n });
  statsChanged = true;
  wake?.();
}

function cancel(id: number) {
  const at = queue.findIndex((s) => s.id === id);
  if (at >= 0) {
    queue.splice(at, 1)[0]!.state = "ended";
    statsChanged = true;
    return postUpdate(true);
  }
  const stream = active.get(id);
  if (!stream) return; // already finished
  // Its row leaves the batch before the next step (and a step running now samples nothing for it); the slot
  // is free now, and the update below says so at once.
  stream.state = "ended";
  active.delete(id);
  statsChanged = true;
  // Its tokens not yet posted have nobody to go to.
  events = events.filter((e) => e.id !== id);
  postUpdate(true);
}

function finish(stream: Stream, reason: "stop" | "length", flush = true) {
  if (flush) {
    const tail = stream.stopper.push(stream.decoder.flush());
    const text = tail.stopped ? tail.text : tail.text + stream.stopper.flush();
    if (tail.stopped) reason = "stop";
    if (text) events.push({ id: stream.id, type: "token", text, index: Math.max(0, stream.completion - 1) });
  }
  const promptTokens = stream.promptIds.length;
  const completionTokens = stream.completion;
  events.push({ id: stream.id, type: "done", finishReason: reason, usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens } });
  end(stream);
}

function fail(stream: Stream, error: unknown) {
  events.push({ id: stream.id, type: "error", message: describe(error) });
  end(stream);
}

function end(stream: Stream) {
  stream.state = "ended";
  stream.cache = undefined;
  active.delete(stream.id);
  statsChanged = true;
  urgent = true;
}

/** Takes a sampled token: emits its text, or ends the stream. The EOS token counts as generated but has no text. */
function accept(stream: Stream, token: number) {
  if (stream.state !== "active") return;
  const index = stream.completion++;
  if (token === eosId) return finish(stream, "stop");
  const { text, stopped } = stream.stopper.push(stream.decoder.push(token));
  if (text) events.push({ id: stream.id, type: "token", text, index });
  if (index === 0) urgent = true; // time to first token
  if (stopped) return finish(stream, "stop", false);
  if (stream.completion >= stream.request.maxTokens || stream.promptIds.length + stream.completion >= init.contextLength) {
    return finish(stream, "length");
  }
  stream.next = token;
}

const int64 = (values: BigInt64Array, dims: number[]) => new ort.Tensor("int64", values, dims);

function lastLogits(output: ort.Tensor | undefined, row: number): Float32Array {
  if (!output || output.dims.length !== 3) throw new Error("the graph returned no [batch, sequence, vocab] logits");
  const [, sequence, vocab] = output.dims as [number, number, number];
  const at = (row * sequence + sequence - 1) * vocab;
  return (output.data as Float32Array).subarray(at, at + vocab);
}

/**
 * Runs a group's prompts in one batch (left-padded to the longest, empty past), keeps where each one's cache
 * is, and samples each one's first token from its last (real) position. Pads are masked out and sit at
 * position 0; positions count only real tokens, so each row computes what it would alone.
 */
async function prefill(group: Stream[]) {
  const B = group.length;
  const S = Math.max(...group.map((s) => s.promptIds.length));
  const ids = new BigInt64Array(B * S); // pads: token 0
  const mask = new BigInt64Array(B * S);
  const positions = new BigInt64Array(B * S);
  group.forEach((stream, b) => {
    const n = stream.promptIds.length;
    const at = b * S + S - n;
    for (let i = 0; i < n; i++) {
      ids[at + i] = BigInt(stream.promptIds[i]!);
      positions[at + i] = BigInt(i);
    }
    mask.fill(1n, at, (b + 1) * S);
  });
  const feeds: Record<string, ort.Tensor> = {
    input_ids: int64(ids, [B, S]),
    attention_mask: int64(mask, [B, S]),
    position_ids: int64(positions, [B, S]),
  };
  for (const name of graph.pastNames) feeds[name] = new ort.Tensor("float32", new Float32Array(0), [B, graph.kvHeads, 0, graph.headDim]);
  let out: ort.InferenceSession.ReturnType;
  let present: Float32Array[];
  let logits: Float32Array[];
  try {
    out = await session.run(feeds);
    present = graph.presentNames.map((name) => {
      const t = out[name];
      if (!t || t.dims[0] !== B || t.dims[2] !== S) throw new Error(`${name} has shape [${t?.dims.join(", ")}] after a prefill of ${B} × ${S} tokens`);
      return t.data as Float32Array;
    });
    logits = group.map((_, b) => lastLogits(out.logits, b));
  } catch (error) {
    for (const s of group) if (s.state === "active") fail(s, error);
    return;
  }
  prefills++;
  statsChanged = true;
  group.forEach((stream, b) => {
    stream.length = stream.promptIds.length;
    if (stream.state !== "active") return; // cancelled while it ran
    stream.cache = { present, row: b, columns: S };
    accept(stream, sampleToken(logits[b]!, stream.request, stream.random));
  });
  freeBuffer(out.logits!.data as Float32Array);
}

/** Makes `rows` the streams still active plus the newcomers, copying each row's real columns right-aligned. */
function rebuild(joining: Stream[]) {
  const kept = rows.map((stream, row) => ({ stream, row })).filter((r) => r.stream.state === "active");
  const joined = joining.filter((s) => s.state === "active" && s.cache);
  const all = [...kept.map((r) => r.stream), ...joined];
  const length = Math.max(0, ...all.map((s) => s.length));
  const { kvHeads: H, headDim: D } = graph;
  past = graph.pastNames.map((_, n) => {
    const data = new Float32Array(all.length * H * length * D);
    const copy = (source: Float32Array, sourceRow: number, sourceLength: number, row: number, len: number) => {
      for (let h = 0; h < H; h++) {
        const from = ((sourceRow * H + h) * sourceLength + sourceLength - len) * D;
        data.set(source.subarray(from, from + len * D), ((row * H + h) * length + length - len) * D);
      }
    };
    kept.forEach((r, b) => copy(past[n]!.data as Float32Array, r.row, pastLength, b, r.stream.length));
    joined.forEach((s, j) => copy(s.cache!.present[n]!, s.cache!.row, s.cache!.columns, kept.length + j, s.length));
    freeBuffer(past[n]?.data as Float32Array | undefined);
    return new ort.Tensor("float32", data, [all.length, H, length, D]);
  });
  // A prefill group's caches are shared by its rows: those still active all join here, and no other reads them.
  for (const data of new Set(joined.flatMap((s) => s.cache!.present))) freeBuffer(data);
  for (const s of joined) s.cache = undefined;
  rows = all;
  pastLength = length;
}

/** One decode step: every row feeds its next token; the outputs become the cache as they are. */
async function step() {
  const B = rows.length;
  const T = pastLength;
  const ids = new BigInt64Array(B);
  const positions = new BigInt64Array(B);
  const mask = new BigInt64Array(B * (T + 1));
  rows.forEach((s, b) => {
    ids[b] = BigInt(s.next);
    positions[b] = BigInt(s.length);
    mask.fill(1n, b * (T + 1) + T - s.length, (b + 1) * (T + 1));
  });
  const feeds: Record<string, ort.Tensor> = {
    input_ids: int64(ids, [B, 1]),
    attention_mask: int64(mask, [B, T + 1]),
    position_ids: int64(positions, [B, 1]),
  };
  graph.pastNames.forEach((name, n) => (feeds[name] = past[n]!));
  let out: ort.InferenceSession.ReturnType;
  let logits: Float32Array[];
  try {
    out = await session.run(feeds);
    past = graph.presentNames.map((name) => {
      const t = out[name];
      if (!t || t.dims[0] !== B || t.dims[2] !== T + 1) throw new Error(`${name} has shape [${t?.dims.join(", ")}], expected [${B}, ${graph.kvHeads}, ${T + 1}, ${graph.headDim}]`);
      return t;
    });
    logits = rows.map((_, b) => lastLogits(out.logits, b));
  } catch (error) {
    for (const s of rows) if (s.state === "active") fail(s, error);
    rows = [];
    past = [];
    pastLength = 0;
    return;
  }
  steps++;
  statsChanged = true;
  pastLength = T + 1;
  rows.forEach((s, b) => {
    s.length++;
    if (s.state === "active") accept(s, sampleToken(logits[b]!, s.request, s.random));
  });
  for (const name of graph.pastNames) freeBuffer(feeds[name]!.data as Float32Array);
  freeBuffer(out.logits!.data as Float32Array);
}

async function loop() {
  for (;;) {
    const now = performance.now();
    for (const s of active.values()) if (now - s.startedAt > init.maxGenerationMs) finish(s, "length");

    const admitted: Stream[] = [];
    while (queue.length > 0 && active.size < init.maxStreams) {
      const stream = queue.shift()!;
      stream.state = "active";
      stream.startedAt = performance.now();
      active.set(stream.id, stream);
      statsChanged = true;
      admitted.push(stream);
    }
    for (const group of prefillGroups(admitted, (s) => s.promptIds.length, prefillBudget)) {
      const live = group.filter((s) => s.state === "active"); // one cancelled during an earlier group's run is skipped
      if (live.length > 0) await prefill(live);
    }
    const joining = admitted.filter((s) => s.state === "active");
    if (joining.length > 0 || rows.some((s) => s.state !== "active")) rebuild(joining);
    if (rows.length > 0) await step();
    postUpdate();

    // Straight on to the next step: onnxruntime-node starts every run from setImmediate, so cancellations and
    // new requests get in before its computation anyway (and a row cancelled meanwhile samples nothing).
    if (rows.length > 0) continue;
    if (queue.length > 0) {
      // Let cancellations in before admitting the queue.
      await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    // Idle: nothing may wait for the next post.
    postUpdate(true);
    if (closing) break;
    await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
    // Requests sent together arrive as separate messages: let the rest of a burst in, to prefill it as one.
    await new Promise((resolve) => setImmediate(resolve));
  }
}

port.on("message", (message: ToWorker) => {
  if (message.kind === "submit") submit(message.id, message.request);
  else if (message.kind === "cancel") cancel(message.id);
  else if (message.kind === "close") {
    closing = true;
    wake?.();
  }
});

try {
  await loop();
} catch (error) {
  // A bug, not a model failure: fail everyone rather than hang them.
  for (const s of [...active.values(), ...queue]) fail(s, error);
  queue.length = 0;
  postUpdate(true);
}
await session.release();
port.close();
