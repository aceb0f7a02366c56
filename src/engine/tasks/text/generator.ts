/**
 * Text generation with continuous batching. The model, its tokenizer and every stream's KV cache live in one
 * worker thread (generation-worker.ts); this side forwards requests and turns the worker's updates into one
 * async iterator of events per request.
 */
import { join } from "node:path";
import type { Worker } from "node:worker_threads";
import { EngineError } from "../../errors.ts";
import { startModelWorker } from "../../execution/worker-host.ts";
import type { TextGenerationManifest } from "../../registry/manifest.ts";
import type { FromWorker, GenerationWorkerInit, StreamEvent, StreamStats, ToWorker } from "./protocol.ts";
import { randomSeed } from "./sampling.ts";

export type { StreamStats } from "./protocol.ts";

/**
 * One generation's parameters. The HTTP layer checks their ranges and applies defaults and the server's cap;
 * the engine checks only what only it knows (the prompt's tokens against the context, token ids against the
 * vocabulary).
 */
export type GenerationParams = {
  prompt: string;
  /** Tokens to generate at most (≥ 1; the HTTP layer applies the server's cap). */
  maxTokens: number;
  /** When prompt + maxTokens exceeds the context: true = generate as many as fit, false = refuse (invalid_input). */
  fitToContext: boolean;
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  /** Same seed, same parameters, same prompt → same text, whatever else is generating. Random when absent. */
  seed?: number;
  /** The completion ends before the first occurrence of any of these; the stop sequence is not returned. */
  stop: string[];
  /**
   * OpenAI's penalties (-2..2, 0 = off), over the tokens generated so far (not the prompt):
   * logit -= frequencyPenalty * count + presencePenalty * (count > 0).
   */
  presencePenalty: number;
  frequencyPenalty: number;
  /**
   * Token id → value added to its logit before sampling (OpenAI's logit_bias, -100..100). An id outside the
   * vocabulary → invalid_input naming the id and the vocabulary size.
   */
  logitBias: ReadonlyMap<number, number>;
  /** The EOS token cannot be sampled before this many tokens have been generated (vLLM's min_tokens); 0 = off. */
  minTokens: number;
  /** The EOS token does not end the generation (vLLM's ignore_eos): it counts as a generated token with no text, and generation goes on. */
  ignoreEos: boolean;
  /**
   * Log-probabilities: each sampled token's, with this many most likely alternatives (0–20). Undefined = none
   * computed. They are the model's own: log-softmax of the logits before temperature, penalties and bias.
   */
  logprobs?: number;
  /** With logprobs: the prompt's tokens' log-probabilities too (for OpenAI's echo), from the prefill's logits. */
  promptLogprobs?: boolean;
};

export type FinishReason = "stop" | "length";
export type Usage = { promptTokens: number; completionTokens: number; totalTokens: number };

/**
 * A token as log-probabilities show it. `token`: its bytes as text when they are valid UTF-8, else OpenAI's
 * `bytes:\xe2\x80` form; `bytes`: its bytes (a special token's are its content's). `top`: the most likely tokens
 * at that position, most likely first (ties: lower id first).
 */
export type TokenLogprob = { token: string; bytes: number[]; logprob: number; top: { token: string; bytes: number[]; logprob: number }[] };

export type GenerationEvent =
  /** First, only with promptLogprobs: every prompt token; the first has logprob null and top [] (nothing precedes it). */
  | { type: "prompt"; tokens: (Omit<TokenLogprob, "logprob"> & { logprob: number | null })[] }
  /**
   * A piece of the completion (valid UTF-8, never empty); index = the 0-based completion token that completed
   * it. logprobs (only when asked): every sampled token whose text this event is the first to release any of,
   * in order. Tokens whose text is never released (EOS, a completed stop sequence) appear in none.
   */
  | { type: "token"; text: string; index: number; logprobs?: TokenLogprob[] }
  /**
   * The last event. finishReason "stop": the EOS token or a stop sequence; "length": maxTokens, the context
   * length, or the generation time limit (maxGenerationMs). completionTokens counts every sampled token,
   * the EOS token included.
   */
  | { type: "done"; finishReason: FinishReason; usage: Usage };

export type TextGeneratorOptions = {
  /** Streams in the running batch (slots). */
  maxStreams: number;
  /** Requests that may wait for a slot; beyond it generate() fails with `overloaded`. */
  maxQueue: number;
  /** A generation is ended (finish reason "length") once it has run this long since it got its slot. */
  maxGenerationMs: number;
  /** Threads ONNX Runtime may use for one run. */
  intraOpThreads: number;
};

export const DEFAULT_TEXT_GENERATOR_OPTIONS: TextGeneratorOptions = {
  maxStreams: 16,
  maxQueue: 64,
  maxGenerationMs: 60_000,
  intraOpThreads: 1,
};

/** What the HTTP layer and the model registry need of a text-generation model; TextGenerator is the real one, tests may bring a fake. */
export interface TextModel {
  readonly task: "text-generation";
  readonly manifest: TextGenerationManifest;
  /** See TextGenerator.generate. */
  generate(params: GenerationParams, signal?: AbortSignal): Promise<{ promptTokens: number; events: AsyncIterable<GenerationEvent> }>;
  /** Streams holding a slot, streams waiting for one, and decode steps and prefill runs so far. */
  stats(): StreamStats;
  /** Calls `listener` with the stats after every update (each step, each change of membership); returns the unsubscribe. */
  onStats(listener: (stats: StreamStats) => void): () => void;
  /** One real short greedy generation; throws if it fails or produces nothing. */
  selfTest(): Promise<void>;
  /** Takes no new requests, lets the admitted ones finish, then frees the model. */
  close(): Promise<void>;
}

/** The self-test: two greedy tokens, nothing else asked. */
const SELF_TEST: GenerationParams = {
  prompt: "The",
  maxTokens: 2,
  fitToContext: true,
  temperature: 0,
  topK: 0,
  topP: 1,
  stop: [],
  presencePenalty: 0,
  frequencyPenalty: 0,
  logitBias: new Map(),
  minTokens: 0,
  ignoreEos: false,
};

// Bun runs the TypeScript worker directly; a bundle for Node ships the compiled .js beside this module.
const workerUrl = new URL(`./generation-worker.${import.meta.url.endsWith(".ts") ? "ts" : "js"}`, import.meta.url);

export class TextGenerator implements TextModel {
  readonly task = "text-generation" as const;
  private nextId = 1;
  private readonly accepting = new Map<number, { resolve: (promptTokens: number) => void; reject: (error: Error) => void }>();
  private readonly streams = new Map<number, EventStream>();
  private current: StreamStats = { active: 0, queued: 0, steps: 0, prefills: 0 };
  private readonly listeners = new Set<(stats: StreamStats) => void>();
  private closing: Promise<void> | undefined;
  private dead: string | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly worker: Worker,
    readonly manifest: TextGenerationManifest,
  ) {
    worker.on("message", (message: FromWorker) => this.receive(message));
    worker.on("error", (error: Error) => this.die(`the generation worker failed: ${error.message}`));
    this.exited = new Promise((resolve) => worker.once("exit", () => resolve()));
    void this.exited.then(() => this.die("the generation worker exited"));
  }

  /** Starts the worker (loading the model and tokenizer), then warms it with one real short generation. */
  static async create(dir: string, manifest: TextGenerationManifest, options: Partial<TextGeneratorOptions> = {}): Promise<TextGenerator> {
    const opts = { ...DEFAULT_TEXT_GENERATOR_OPTIONS, ...options };
    for (const key of ["maxStreams", "maxGenerationMs", "intraOpThreads"] as const) {
      if (!(Number.isInteger(opts[key]) && opts[key] >= 1)) throw new RangeError(`${key} must be a positive integer`);
    }
    if (!(Number.isInteger(opts.maxQueue) && opts.maxQueue >= 0)) throw new RangeError("maxQueue must be a non-negative integer");
    const init: GenerationWorkerInit = {
      modelPath: join(dir, "model.onnx"),
      tokenizerPath: join(dir, manifest.tokenizer),
      contextLength: manifest.context_length,
      ...(manifest.eos_token === undefined ? {} : { eosToken: manifest.eos_token }),
      maxStreams: opts.maxStreams,
      maxQueue: opts.maxQueue,
      maxGenerationMs: opts.maxGenerationMs,
      intraOpThreads: opts.intraOpThreads,
    };
    const { worker } = await startModelWorker(workerUrl, init, manifest.name);
    const generator = new TextGenerator(worker, manifest);
    try {
      await generator.selfTest();
    } catch (error) {
      await generator.close();
      throw new EngineError("load_failed", `${manifest.name}: the warm-up generation failed: ${error instanceof Error ? error.message : error}`);
    }
    return generator;
  }

  stats(): StreamStats {
    return { ...this.current };
  }

  onStats(listener: (stats: StreamStats) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Queues the request. Resolves once the worker has tokenized and admitted the prompt (or put it in the
   * queue), so every 4xx is an error here, before any event: invalid_input (a prompt of no tokens or too long
   * for the context, prompt + maxTokens over it without fitToContext, a logit bias id outside the vocabulary),
   * overloaded (queue full, retryAfter 1), not_ready (closing). If the signal aborts first, rejects with its
   * reason.
   *
   * The events end with one "done" event. Aborting the signal, or leaving the iteration early (break/return),
   * cancels: the iterator ends and the worker drops the stream before its next step, freeing its slot. If ONNX
   * Runtime fails mid-generation the iterator throws an EngineError inference_failed.
   */
  async generate(params: GenerationParams, signal?: AbortSignal): Promise<{ promptTokens: number; events: AsyncIterable<GenerationEvent> }> {
    if (this.closing) throw new EngineError("not_ready", `model '${this.manifest.name}' is being unloaded`, 1);
    if (this.dead) throw new EngineError("not_ready", `model '${this.manifest.name}' is unavailable: ${this.dead}`);
    signal?.throwIfAborted();

    const id = this.nextId++;
    const events = new EventStream(() => this.cancel(id));
    this.streams.set(id, events);
    const onAbort = () => events.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    events.onEnd = () => signal?.removeEventListener("abort", onAbort);

    let stopWaiting: (() => void) | undefined;
    const accepted = new Promise<number>((resolve, reject) => {
      this.accepting.set(id, { resolve, reject });
      if (!signal) return;
      const onAbortWhileWaiting = () => reject(signal.reason);
      signal.addEventListener("abort", onAbortWhileWaiting, { once: true });
      stopWaiting = () => signal.removeEventListener("abort", onAbortWhileWaiting);
    });
    this.post({ kind: "submit", id, request: { ...params, seed: params.seed ?? randomSeed() } });
    try {
      return { promptTokens: await accepted, events };
    } catch (error) {
      events.cancel(); // ends it here, and tells the worker in case it was accepted meanwhile
      throw error;
    } finally {
      stopWaiting?.();
      this.accepting.delete(id);
    }
  }

  async selfTest(): Promise<void> {
    const { events } = await this.generate(SELF_TEST);
    let done: Usage | undefined;
    for await (const event of events) if (event.type === "done") done = event.usage;
    if (!done || done.completionTokens < 1) throw new EngineError("inference_failed", "the self-test generation produced no tokens");
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.dead) {
        this.post({ kind: "close" });
        await this.exited;
      }
      await this.worker.terminate();
    })();
    return this.closing;
  }

  private post(message: ToWorker) {
    this.worker.postMessage(message);
  }

  private cancel(id: number) {
    if (this.streams.delete(id) && !this.dead) this.post({ kind: "cancel", id });
  }

  private receive(message: FromWorker) {
    switch (message.kind) {
      case "accepted":
        this.accepting.get(message.id)?.resolve(message.promptTokens);
        break;
      case "rejected":
        this.streams.get(message.id)?.end();
        this.streams.delete(message.id);
        this.accepting.get(message.id)?.reject(new EngineError(message.code, message.message, message.retryAfter));
        break;
      case "update":
        for (const event of message.events) this.deliver(event);
        this.current = message.stats;
        for (const listener of this.listeners) listener(this.stats());
        break;
    }
  }

  private deliver(event: StreamEvent) {
    const stream = this.streams.get(event.id);
    if (!stream) return; // cancelled here already
    if (event.type === "error") {
      this.streams.delete(event.id);
      return stream.fail(new EngineError("inference_failed", event.message));
    }
    const { id, ...generation } = event;
    stream.push(generation);
    if (generation.type === "done") {
      this.streams.delete(id);
      stream.end();
    }
  }

  private die(reason: string) {
    if (this.dead) return;
    this.dead = reason;
    const error = new EngineError("inference_failed", reason);
    for (const call of this.accepting.values()) call.reject(new EngineError("not_ready", reason));
    this.accepting.clear();
    for (const stream of this.streams.values()) stream.fail(error);
    this.streams.clear();
    this.current = { ...this.current, active: 0, queued: 0 };
  }
}

/** One request's events: filled by the worker's updates, read once with for-await. */
class EventStream implements AsyncIterable<GenerationEvent> {
  private readonly buffer: GenerationEvent[] = [];
  private waiting: { resolve: (r: IteratorResult<GenerationEvent>) => void; reject: (e: Error) => void } | undefined;
  private ended = false;
  private error: Error | undefined;
  onEnd: (() => void) | undefined;

  constructor(private readonly onCancel: () => void) {}

  push(event: GenerationEvent) {
    if (this.ended) return;
    if (this.waiting) {
      this.waiting.resolve({ value: event, done: false });
      this.waiting = undefined;
    } else this.buffer.push(event);
  }

  end() {
    if (this.ended) return;
    this.ended = true;
    this.onEnd?.();
    this.waiting?.resolve({ value: undefined, done: true });
    this.waiting = undefined;
  }

  fail(error: Error) {
    if (this.ended) return;
    this.error = error;
    this.ended = true;
    this.onEnd?.();
    this.waiting?.reject(error);
    this.waiting = undefined;
  }

  /** The consumer is gone: drop what is buffered, end the iteration and cancel the stream. */
  cancel() {
    const wasEnded = this.ended;
    this.buffer.length = 0;
    this.error = undefined;
    this.end();
    if (!wasEnded) this.onCancel();
  }

  [Symbol.asyncIterator](): AsyncIterator<GenerationEvent> {
    return {
      next: () => {
        const event = this.buffer.shift();
        if (event) return Promise.resolve({ value: event, done: false });
        if (this.error) {
          const error = this.error;
          this.error = undefined;
          return Promise.reject(error);
        }
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
      },
      return: () => {
        this.cancel();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
