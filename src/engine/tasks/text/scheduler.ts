/**
 * Continuous batching's bookkeeping, in the generation worker: the queue and admission, each stream's time limit
 * and cancellation, turning sampled tokens into events (text, stop sequences, EOS, finish reasons, usage,
 * log-probabilities), and when updates go to the main thread. Streams join and leave between decode steps, and
 * each step is one batched run over all active streams. The model itself is behind ModelSteps (kv-batch.ts),
 * and updates leave through `post`, so all of this runs without a worker thread or ONNX in tests.
 */
import type { FinishReason, TokenLogprob } from "./generator.ts";
import { tokenLogprob, type TokenText } from "./logprobs.ts";
import { prefillGroups, prefillTokenBudget } from "./prefill.ts";
import type { FromWorker, StreamEvent, StreamRequest, StreamStats } from "./protocol.ts";
import { seededRandom, TokenSampler } from "./sampling.ts";
import { StopMatcher, type Detokenizer, type TextCodec } from "./text-stream.ts";

/** A prompt to prefill, under the key its cache is known by until it joins the batch. */
export type Prompt = { key: number; ids: readonly number[] };

/**
 * The model's side of continuous batching: a running batch of rows with their KV cache. Logits returned stay
 * valid until the next call.
 */
export interface ModelSteps {
  /** Logits per position (the model's vocabulary, perhaps padded). */
  readonly vocab: number;
  /** Runs the prompts as one batch, keeping each one's cache aside; returns each prompt's logits, `vocab` per prompt token. */
  prefill(prompts: readonly Prompt[]): Promise<Float32Array[]>;
  /** The batch becomes the rows at `keep` (ascending indices), then the prefilled prompts `join`; other prefilled caches are dropped. */
  rebuild(keep: readonly number[], join: readonly number[]): void;
  /** One decode step, row b feeding tokens[b]; returns each row's logits. If it throws, the batch is gone. */
  step(tokens: readonly number[]): Promise<Float32Array[]>;
}

export type SchedulerOptions = {
  /** The model's context length: prompt and completion together. */
  contextLength: number;
  /** Streams in the running batch (slots). */
  maxStreams: number;
  /** Requests that may wait for a slot; beyond it a submit is refused as overloaded. */
  maxQueue: number;
  /** A generation is ended (finish reason "length") once it has run this long since it got its slot. */
  maxGenerationMs: number;
};

/**
 * Posting wakes the main thread, which costs the worker tens of microseconds on a virtual machine: a tenth of a
 * small model's decode step. So updates go out at most every POST_EVERY_MS, except those a client or the server
 * waits on (a stream's first token, its end, a cancellation) and everything pending when the loop goes idle.
 */
const POST_EVERY_MS = 2;

type Stream = {
  id: number;
  request: StreamRequest;
  promptIds: number[];
  sampler: TokenSampler;
  decoder: Detokenizer;
  stopper: StopMatcher;
  state: "queued" | "active" | "ended";
  /** When it was admitted to the batch (its time limit counts from here). */
  startedAt: number;
  /** Tokens generated so far. */
  completion: number;
  /** The token to feed at the next step. */
  next: number;
  /**
   * Only with log-probabilities: sampled tokens no event has carried yet, each with the position in the
   * stream's text where its text starts; an event releasing text up to position P carries those starting
   * before P (so the first bytes of a split character go with the character).
   */
  pending: { start: number; logprob: TokenLogprob }[] | undefined;
  /** Characters detokenized so far. */
  decoded: number;
  /** Characters released in events so far. */
  released: number;
};

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));
const tokens = (n: number) => (n === 1 ? "1 token" : `${n} tokens`);

export class GenerationScheduler {
  private readonly queue: Stream[] = [];
  /** Streams holding a slot: in the batch, being prefilled or about to join. */
  private readonly active = new Map<number, Stream>();
  /** The running batch, row by row. Rows that ended stay until the next rebuild. */
  private rows: Stream[] = [];
  private steps = 0;
  private prefills = 0;
  private events: StreamEvent[] = [];
  private statsChanged = false;
  private lastPostAt = -Infinity;
  private urgent = false;
  private closing = false;
  private wake: (() => void) | undefined;
  /** Padded tokens one prefill run may take (see prefill.ts). */
  private readonly prefillBudget: number;
  private readonly tokenText: (id: number) => TokenText;

  constructor(
    private readonly model: ModelSteps,
    private readonly codec: TextCodec,
    private readonly options: SchedulerOptions,
    private readonly post: (message: FromWorker) => void,
  ) {
    this.prefillBudget = prefillTokenBudget(model.vocab);
    this.tokenText = (id) => codec.tokenText(id);
  }

  stats(): StreamStats {
    return { active: this.active.size, queued: this.queue.length, steps: this.steps, prefills: this.prefills };
  }

  /**
   * Tokenizes and checks the request, then queues it (answering "accepted") or refuses it (answering
   * "rejected"): invalid_input for what only the model knows (the prompt against the context, logit bias ids
   * against the vocabulary), overloaded when every slot and the queue are taken, not_ready once closing.
   */
  submit(id: number, request: StreamRequest) {
    const reject = (code: "invalid_input" | "overloaded" | "not_ready", message: string, retryAfter?: number) =>
      this.post({ kind: "rejected", id, code, message, ...(retryAfter === undefined ? {} : { retryAfter }) });
    if (this.closing) return reject("not_ready", "the model is being unloaded", 1);
    let promptIds: number[];
    try {
      promptIds = this.codec.encode(request.prompt);
    } catch (error) {
      return reject("invalid_input", `the prompt cannot be tokenized: ${describe(error)}`);
    }
    const n = promptIds.length;
    const context = this.options.contextLength;
    if (n === 0) return reject("invalid_input", "the prompt encodes to no tokens");
    if (n >= context) return reject("invalid_input", `the prompt is ${tokens(n)} and the model's context is ${tokens(context)}, which leaves no room to generate`);
    if (n + request.maxTokens > context) {
      if (!request.fitToContext) {
        return reject(
          "invalid_input",
          `the prompt is ${tokens(n)} and the model's context is ${tokens(context)}, so at most ${tokens(context - n)} can be generated; ${request.maxTokens} were asked for`,
        );
      }
      request = { ...request, maxTokens: context - n };
    }
    const vocab = this.model.vocab;
    for (const token of request.logitBias.keys()) {
      if (!(Number.isInteger(token) && token >= 0 && token < vocab)) {
        return reject("invalid_input", `the logit bias names token ${token}, but the model's vocabulary has ${tokens(vocab)} (ids 0 to ${vocab - 1})`);
      }
    }
    if (this.active.size + this.queue.length >= this.options.maxStreams + this.options.maxQueue) {
      return reject("overloaded", `all ${this.options.maxStreams} generation slots are busy and the queue is full (${this.options.maxQueue} waiting)`, 1);
    }
    this.queue.push({
      id,
      request,
      promptIds,
      sampler: new TokenSampler(request, seededRandom(request.seed), request.ignoreEos ? undefined : this.codec.eosId),
      decoder: this.codec.newDetokenizer(),
      stopper: new StopMatcher(request.stop),
      state: "queued",
      startedAt: 0,
      completion: 0,
      next: 0,
      pending: request.logprobs === undefined ? undefined : [],
      decoded: 0,
      released: 0,
    });
    this.post({ kind: "accepted", id, promptTokens: n });
    this.statsChanged = true;
    this.wake?.();
  }

  /**
   * Drops a stream: a queued one at once; an active one leaves the batch before the next step (a step running
   * now samples nothing for it), and its events not yet posted are dropped. Either way its slot or queue place
   * is free now, and the update saying so goes out at once.
   */
  cancel(id: number) {
    const at = this.queue.findIndex((s) => s.id === id);
    if (at >= 0) {
      this.queue.splice(at, 1)[0]!.state = "ended";
    } else {
      const stream = this.active.get(id);
      if (!stream) return; // already finished
      stream.state = "ended";
      this.active.delete(id);
      // Its events not yet posted have nobody to go to.
      this.events = this.events.filter((e) => e.id !== id);
    }
    this.statsChanged = true;
    this.postUpdate(true);
  }

  /** Takes no new requests; run() returns once the admitted and queued ones have finished. */
  close() {
    this.closing = true;
    this.wake?.();
  }

  /** The batching loop, until close() and idle. */
  async run(): Promise<void> {
    try {
      await this.loop();
    } catch (error) {
      // A bug, not a model failure: fail everyone rather than hang them.
      for (const s of [...this.active.values(), ...this.queue]) this.fail(s, error);
      this.queue.length = 0;
      this.postUpdate(true);
    }
  }

  private async loop() {
    for (;;) {
      const now = performance.now();
      for (const s of this.active.values()) if (now - s.startedAt > this.options.maxGenerationMs) this.finish(s, "length");

      const admitted: Stream[] = [];
      while (this.queue.length > 0 && this.active.size < this.options.maxStreams) {
        const stream = this.queue.shift()!;
        stream.state = "active";
        stream.startedAt = performance.now();
        this.active.set(stream.id, stream);
        this.statsChanged = true;
        admitted.push(stream);
      }
      for (const group of prefillGroups(admitted, (s) => s.promptIds.length, this.prefillBudget)) {
        const live = group.filter((s) => s.state === "active"); // one cancelled during an earlier group's run is skipped
        if (live.length > 0) await this.prefill(live);
      }
      if (admitted.length > 0 || this.rows.some((s) => s.state !== "active")) this.rebuild(admitted.filter((s) => s.state === "active"));
      if (this.rows.length > 0) await this.step();
      this.postUpdate();

      // Straight on to the next step: onnxruntime-node starts every run from setImmediate, so cancellations and
      // new requests get in before its computation anyway (and a row cancelled meanwhile samples nothing).
      if (this.rows.length > 0) continue;
      if (this.queue.length > 0) {
        // Let cancellations in before admitting the queue.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      // Idle: nothing may wait for the next post.
      this.postUpdate(true);
      if (this.closing) break;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
      // Requests sent together arrive as separate messages: let the rest of a burst in, to prefill it as one.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Prefills a group of newcomers and samples each one's first token from its prompt's last position. */
  private async prefill(group: Stream[]) {
    let logits: Float32Array[];
    try {
      logits = await this.model.prefill(group.map((s) => ({ key: s.id, ids: s.promptIds })));
    } catch (error) {
      for (const s of group) if (s.state === "active") this.fail(s, error);
      return;
    }
    this.prefills++;
    this.statsChanged = true;
    const vocab = this.model.vocab;
    group.forEach((stream, b) => {
      if (stream.state !== "active") return; // cancelled while it ran
      const prompt = logits[b]!;
      if (stream.pending && stream.request.promptLogprobs) this.events.push({ id: stream.id, type: "prompt", tokens: this.promptLogprobs(stream, prompt) });
      this.accept(stream, prompt.subarray(prompt.length - vocab));
    });
  }

  /** The batch becomes the rows still active, then the newcomers still active (each one prefilled). */
  private rebuild(joining: Stream[]) {
    const keep: number[] = [];
    this.rows.forEach((s, row) => s.state === "active" && keep.push(row));
    this.model.rebuild(
      keep,
      joining.map((s) => s.id),
    );
    this.rows = [...keep.map((row) => this.rows[row]!), ...joining];
  }

  private async step() {
    const rows = this.rows;
    let logits: Float32Array[];
    try {
      logits = await this.model.step(rows.map((s) => s.next));
    } catch (error) {
      for (const s of rows) if (s.state === "active") this.fail(s, error);
      this.rows = [];
      return;
    }
    this.steps++;
    this.statsChanged = true;
    rows.forEach((s, b) => s.state === "active" && this.accept(s, logits[b]!));
  }

  /** Samples the stream's next token from its logits: emits its text, or ends the stream. */
  private accept(stream: Stream, logits: Float32Array) {
    const token = stream.sampler.next(logits);
    const index = stream.completion++;
    if (stream.pending) stream.pending.push({ start: stream.decoded, logprob: tokenLogprob(logits, token, stream.request.logprobs!, this.tokenText) });
    if (index === 0) this.urgent = true; // time to first token
    // The EOS token counts as generated but has no text.
    if (token === this.codec.eosId && !stream.request.ignoreEos) return this.finish(stream, "stop");
    const piece = stream.decoder.push(token);
    stream.decoded += piece.length;
    const { text, stopped } = stream.stopper.push(piece);
    this.emit(stream, text, index);
    if (stopped) return this.finish(stream, "stop", false);
    if (stream.completion >= stream.request.maxTokens || stream.promptIds.length + stream.completion >= this.options.contextLength) {
      return this.finish(stream, "length");
    }
    stream.next = token;
  }

  /** Queues a token event for released text, carrying the log-probabilities of the tokens it is the first to release. */
  private emit(stream: Stream, text: string, index: number) {
    if (!text) return;
    if (!stream.pending) {
      this.events.push({ id: stream.id, type: "token", text, index });
      return;
    }
    stream.released += text.length;
    let carried = 0;
    while (carried < stream.pending.length && stream.pending[carried]!.start < stream.released) carried++;
    const logprobs = stream.pending.splice(0, carried).map((p) => p.logprob);
    this.events.push({ id: stream.id, type: "token", text, index, logprobs });
  }

  /** Every prompt token's log-probability given the ones before it (the first has none). */
  private promptLogprobs(stream: Stream, logits: Float32Array) {
    const vocab = this.model.vocab;
    const top = stream.request.logprobs!;
    return stream.promptIds.map((id, i) =>
      i === 0 ? { ...this.tokenText(id), logprob: null, top: [] } : tokenLogprob(logits.subarray((i - 1) * vocab, i * vocab), id, top, this.tokenText),
    );
  }

  private finish(stream: Stream, reason: FinishReason, flush = true) {
    if (flush) {
      const tail = stream.stopper.push(stream.decoder.flush());
      if (tail.stopped) reason = "stop";
      this.emit(stream, tail.stopped ? tail.text : tail.text + stream.stopper.flush(), Math.max(0, stream.completion - 1));
    }
    const promptTokens = stream.promptIds.length;
    const completionTokens = stream.completion;
    this.events.push({ id: stream.id, type: "done", finishReason: reason, usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens } });
    this.end(stream);
  }

  private fail(stream: Stream, error: unknown) {
    this.events.push({ id: stream.id, type: "error", message: describe(error) });
    this.end(stream);
  }

  private end(stream: Stream) {
    stream.state = "ended";
    this.active.delete(stream.id);
    this.statsChanged = true;
    this.urgent = true;
  }

  private postUpdate(now = false) {
    if (this.events.length === 0 && !this.statsChanged) return;
    if (!now && !this.urgent && performance.now() - this.lastPostAt < POST_EVERY_MS) return;
    this.post({ kind: "update", stats: this.stats(), events: this.events });
    this.events = [];
    this.statsChanged = false;
    this.urgent = false;
    this.lastPostAt = performance.now();
  }
}
