/**
 * GenerationScheduler without a worker thread or ONNX: a fake model whose logits the test chooses, recording the
 * rows of every prefill and decode step, and the real tiny tokenizer.
 */
import { describe, expect, test } from "bun:test";
import type { FromWorker, StreamEvent, StreamRequest } from "../../../../../src/engine/tasks/text/protocol.ts";
import { GenerationScheduler, type ModelSteps, type Prompt, type SchedulerOptions } from "../../../../../src/engine/tasks/text/scheduler.ts";
import { greedy, logSoftmax, tinyCodec } from "../../../../helpers/text-model.ts";

const codec = tinyCodec();
const VOCAB = 512;
const EOS = codec.eosId!;
/** What the fake model prefers once a stream's script has run out: " and". */
const FILLER = 267;
const THE = 258;
const LORD = 340;

/** The fake's logits: a fixed pattern (with ties) under a clear favourite. */
function logitsPreferring(token: number): Float32Array {
  const row = new Float32Array(VOCAB);
  for (let i = 0; i < VOCAB; i++) row[i] = ((i * 37) % 11) / 4;
  row[token] = 8;
  return row;
}

/**
 * A model that prefers, for each stream (by key), the tokens of its script in order, then FILLER. Like
 * onnxruntime-node, each run returns on a later turn of the event loop, so messages get in between steps.
 */
class FakeModel implements ModelSteps {
  readonly vocab = VOCAB;
  /** The keys of every prefill run's prompts, and of every decode step's rows, in order. */
  readonly prefills: number[][] = [];
  readonly steps: number[][] = [];
  /** Set to make the next run throw it. */
  failNext: Error | undefined;
  private rows: number[] = [];
  private readonly sampled = new Map<number, number>();
  private readonly stepWaiters: { count: number; resolve: () => void }[] = [];

  constructor(private readonly scripts: Record<number, number[]> = {}) {}

  async prefill(prompts: readonly Prompt[]): Promise<Float32Array[]> {
    this.prefills.push(prompts.map((p) => p.key));
    await this.run();
    return prompts.map((p) => {
      // Each position prefers the prompt's next token; the last one, the script's first.
      const all = new Float32Array(p.ids.length * VOCAB);
      p.ids.forEach((_, i) => all.set(i + 1 < p.ids.length ? logitsPreferring(p.ids[i + 1]!) : this.next(p.key), i * VOCAB));
      return all;
    });
  }

  rebuild(keep: readonly number[], join: readonly number[]) {
    this.rows = [...keep.map((row) => this.rows[row]!), ...join];
  }

  async step(tokens: readonly number[]): Promise<Float32Array[]> {
    expect(tokens).toHaveLength(this.rows.length);
    this.steps.push([...this.rows]);
    for (const w of this.stepWaiters.filter((w) => this.steps.length >= w.count)) {
      this.stepWaiters.splice(this.stepWaiters.indexOf(w), 1);
      w.resolve();
    }
    await this.run();
    return this.rows.map((key) => this.next(key));
  }

  /** Resolves once `count` decode steps have started (the last one still running). */
  stepStarted(count: number): Promise<void> {
    if (this.steps.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.stepWaiters.push({ count, resolve }));
  }

  private async run() {
    await new Promise((resolve) => setImmediate(resolve));
    const error = this.failNext;
    this.failNext = undefined;
    if (error) throw error;
  }

  private next(key: number): Float32Array {
    const k = this.sampled.get(key) ?? 0;
    this.sampled.set(key, k + 1);
    return logitsPreferring(this.scripts[key]?.[k] ?? FILLER);
  }
}

type Update = Extract<FromWorker, { kind: "update" }>;

function start(model: FakeModel, options: Partial<SchedulerOptions> = {}) {
  const posted: FromWorker[] = [];
  const waiters: { ok: (m: FromWorker) => boolean; resolve: () => void }[] = [];
  const scheduler = new GenerationScheduler(model, codec, { contextLength: 64, maxStreams: 4, maxQueue: 4, maxGenerationMs: 30_000, ...options }, (message) => {
    posted.push(structuredClone(message));
    for (const w of waiters.filter((w) => w.ok(message))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  const running = scheduler.run();
  const updates = (from = 0) => posted.slice(from).filter((m): m is Update => m.kind === "update");
  const eventsOf = (id: number, from = 0): StreamEvent[] => updates(from).flatMap((u) => u.events.filter((e) => e.id === id));
  /** Resolves once stream `id` has ended (its done or error event posted). */
  const ended = (id: number): Promise<void> => {
    const ok = (m: FromWorker) => m.kind === "update" && m.events.some((e) => e.id === id && (e.type === "done" || e.type === "error"));
    if (posted.some(ok)) return Promise.resolve();
    return new Promise((resolve) => waiters.push({ ok, resolve }));
  };
  /** Closes the scheduler and waits for its loop to finish everything admitted. */
  const close = () => {
    scheduler.close();
    return running;
  };
  return { scheduler, posted, updates, eventsOf, ended, close };
}

const request = (prompt: string, maxTokens: number, more: Partial<StreamRequest> = {}): StreamRequest => ({ ...greedy(prompt, maxTokens), seed: 1, ...more });
const text = (events: StreamEvent[]) => events.map((e) => (e.type === "token" ? e.text : "")).join("");
const doneOf = (events: StreamEvent[]) => events.find((e) => e.type === "done");

describe("admission", () => {
  test("maxStreams slots and maxQueue places; beyond them overloaded with retryAfter 1, at once", async () => {
    const model = new FakeModel();
    const { scheduler, posted, close } = start(model, { maxStreams: 1, maxQueue: 2 });
    for (const id of [1, 2, 3, 4]) scheduler.submit(id, request("Then", 3));
    expect(posted.slice(0, 4)).toEqual([
      { kind: "accepted", id: 1, promptTokens: 2 },
      { kind: "accepted", id: 2, promptTokens: 2 },
      { kind: "accepted", id: 3, promptTokens: 2 },
      { kind: "rejected", id: 4, code: "overloaded", message: "all 1 generation slots are busy and the queue is full (2 waiting)", retryAfter: 1 },
    ]);
    await close();
    // One slot: each stream ran alone, in the order they came.
    expect(model.prefills).toEqual([[1], [2], [3]]);
    expect(model.steps.every((rows) => rows.length === 1)).toBe(true);
  });

  test("what only the model knows is checked: the prompt against the context, logit bias ids against the vocabulary", async () => {
    const { scheduler, posted } = start(new FakeModel(), { contextLength: 8 });
    expect(["In the beginning", "Then", "And Jesus wept."].map((p) => codec.encode(p).length)).toEqual([8, 2, 7]);
    scheduler.submit(1, request("", 2));
    scheduler.submit(2, request("In the beginning", 2));
    scheduler.submit(3, request("Then", 7));
    scheduler.submit(4, request("And Jesus wept.", 2));
    scheduler.submit(5, request("Then", 7, { fitToContext: true }));
    scheduler.submit(6, request("Then", 2, { logitBias: new Map([[3, 1], [512, -100]]) }));
    scheduler.submit(7, request("Then", 2, { logitBias: new Map([[511, -100]]) }));
    scheduler.close();
    scheduler.submit(8, request("Then", 2));
    const context = (prompt: number, room: string, asked: number) =>
      `the prompt is ${prompt} tokens and the model's context is 8 tokens, so at most ${room} can be generated; ${asked} were asked for`;
    expect(posted.filter((m) => m.kind !== "update")).toEqual([
      { kind: "rejected", id: 1, code: "invalid_input", message: "the prompt encodes to no tokens" },
      { kind: "rejected", id: 2, code: "invalid_input", message: "the prompt is 8 tokens and the model's context is 8 tokens, which leaves no room to generate" },
      { kind: "rejected", id: 3, code: "invalid_input", message: context(2, "6 tokens", 7) },
      { kind: "rejected", id: 4, code: "invalid_input", message: context(7, "1 token", 2) },
      { kind: "accepted", id: 5, promptTokens: 2 },
      { kind: "rejected", id: 6, code: "invalid_input", message: "the logit bias names token 512, but the model's vocabulary has 512 tokens (ids 0 to 511)" },
      { kind: "accepted", id: 7, promptTokens: 2 },
      { kind: "rejected", id: 8, code: "not_ready", message: "the model is being unloaded", retryAfter: 1 },
    ]);
  });

  test("fitToContext generates as many tokens as fit", async () => {
    const { scheduler, eventsOf, close } = start(new FakeModel(), { contextLength: 8 });
    scheduler.submit(1, request("Then", 7, { fitToContext: true }));
    await close();
    expect(doneOf(eventsOf(1))).toMatchObject({ finishReason: "length", usage: { promptTokens: 2, completionTokens: 6, totalTokens: 8 } });
  });
});

describe("cancellation", () => {
  test("an active stream leaves the batch before the next step: the answer goes out at once, and it gets no step or event after it", async () => {
    const model = new FakeModel();
    const { scheduler, posted, eventsOf, ended, close } = start(model);
    scheduler.submit(1, request("Then", 50));
    scheduler.submit(2, request("Then", 20));
    await model.stepStarted(3); // both in the batch, the third step running
    expect(model.steps.at(-1)).toEqual([1, 2]);
    const sentAt = posted.length;
    scheduler.cancel(1);
    // The answer, at once: one stream holds a slot.
    expect(posted.slice(sentAt)).toEqual([{ kind: "update", stats: { active: 1, queued: 0, steps: 2, prefills: 1 }, events: expect.any(Array) }]);
    const stepsAtCancel = model.steps.length;
    await ended(2);
    await close();

    const later = model.steps.slice(stepsAtCancel);
    expect(later.length).toBeGreaterThan(0);
    expect(later.every((rows) => rows.join() === "2")).toBe(true);
    // Nothing of it from the cancel on: neither the events it had pending nor the step that was running.
    expect(eventsOf(1, sentAt)).toEqual([]);
    expect(eventsOf(1).length).toBeLessThanOrEqual(3);
    expect(doneOf(eventsOf(2))).toMatchObject({ finishReason: "length", usage: { completionTokens: 20 } });
  });

  test("a queued stream is removed at once and never runs; cancelling an unknown or finished stream does nothing", async () => {
    const model = new FakeModel();
    const { scheduler, posted, eventsOf, ended, close } = start(model, { maxStreams: 1 });
    scheduler.submit(1, request("Then", 10));
    scheduler.submit(2, request("Then", 10));
    await model.stepStarted(1);
    const sentAt = posted.length;
    scheduler.cancel(2);
    expect(posted.slice(sentAt)).toEqual([{ kind: "update", stats: { active: 1, queued: 0, steps: 0, prefills: 1 }, events: expect.any(Array) }]);
    await ended(1);
    const after = posted.length;
    scheduler.cancel(1);
    scheduler.cancel(99);
    expect(posted.length).toBe(after);
    await close();
    expect(model.prefills).toEqual([[1]]);
    expect(model.steps.every((rows) => rows.join() === "1")).toBe(true);
    expect(eventsOf(2)).toEqual([]);
  });
});

describe("events", () => {
  test("text as it completes, the EOS token ending the stream (counted, no text), and the first token posted without waiting", async () => {
    const { scheduler, updates, eventsOf, close } = start(new FakeModel({ 1: [THE, LORD, EOS, THE] }));
    scheduler.submit(1, request("Then", 10));
    await close();
    expect(eventsOf(1)).toEqual([
      { id: 1, type: "token", text: " the", index: 0 },
      { id: 1, type: "token", text: " LORD", index: 1 },
      { id: 1, type: "done", finishReason: "stop", usage: { promptTokens: 2, completionTokens: 3, totalTokens: 5 } },
    ]);
    // The first token does not wait for the next post: it goes out after the first step, with that step's token.
    expect(updates().find((u) => u.events.length > 0)).toMatchObject({ stats: { steps: 1, prefills: 1 }, events: [{ index: 0 }, { index: 1 }] });
  });

  test("ignoreEos: the EOS token is a generated token with no text and the stream goes on to maxTokens", async () => {
    const { scheduler, eventsOf, close } = start(new FakeModel({ 1: [THE, EOS, LORD] }));
    scheduler.submit(1, request("Then", 5, { ignoreEos: true }));
    await close();
    expect(text(eventsOf(1))).toBe(" the LORD and and");
    expect(doneOf(eventsOf(1))).toMatchObject({ finishReason: "length", usage: { completionTokens: 5 } });
  });

  test("a failed step fails every stream in the batch; the next request runs on a fresh batch", async () => {
    const model = new FakeModel();
    const { scheduler, eventsOf, ended, close } = start(model);
    scheduler.submit(1, request("Then", 30));
    scheduler.submit(2, request("Then", 30));
    await model.stepStarted(2);
    model.failNext = new Error("out of memory");
    await Promise.all([ended(1), ended(2)]);
    for (const id of [1, 2]) expect(eventsOf(id).at(-1)).toEqual({ id, type: "error", message: "out of memory" });
    scheduler.submit(3, request("Then", 3));
    await close();
    expect(doneOf(eventsOf(3))).toMatchObject({ finishReason: "length", usage: { completionTokens: 3 } });
    expect(model.steps.at(-1)).toEqual([3]);
  });
});

describe("log-probabilities", () => {
  const tokensOf = (events: StreamEvent[]) => events.map((e) => (e.type === "token" ? e.logprobs?.map((l) => l.token) : undefined));

  test("each sampled token's, from the model's own logits, with the most likely alternatives (ties to the lower id)", async () => {
    const { scheduler, eventsOf, close } = start(new FakeModel({ 1: [THE, LORD] }));
    // Penalties and bias change what is sampled, not the log-probabilities reported.
    scheduler.submit(1, request("Then", 2, { logprobs: 5, frequencyPenalty: 2, logitBias: new Map([[FILLER, 5]]) }));
    await close();
    const row = logitsPreferring(THE);
    const expected = logSoftmax(row);
    // The plain way: every id by logit, largest first, ties to the lower id.
    const ranked = [...row.keys()].sort((a, b) => row[b]! - row[a]! || a - b);
    const first = eventsOf(1)[0]!;
    expect(first).toMatchObject({ type: "token", text: " the" });
    const logprob = first.type === "token" ? first.logprobs![0]! : undefined;
    expect(logprob).toMatchObject({ token: " the", bytes: [0x20, 0x74, 0x68, 0x65] });
    expect(logprob!.logprob).toBeCloseTo(expected[THE]!, 10);
    expect(logprob!.top).toHaveLength(5);
    logprob!.top.forEach((t, i) => {
      expect(t).toMatchObject(codec.tokenText(ranked[i]!));
      expect(t.logprob).toBeCloseTo(expected[ranked[i]!]!, 10);
    });
    // Ties below the favourite: the lower ids come first.
    expect(ranked.slice(1, 5).every((id, i, ids) => i === 0 || id > ids[i - 1]!)).toBe(true);
  });

  test("events carry the tokens whose text they release first: a split character with its completion, nothing of a stop sequence", async () => {
    // " the", then "é" in two byte tokens, then " LORD" and "." completing the stop sequence "D.".
    const { scheduler, eventsOf, close } = start(new FakeModel({ 1: [THE, 195, 169, LORD, 46], 2: [97, 240, 159], 3: [120, 97, 97, 99] }));
    scheduler.submit(1, request("Then", 10, { logprobs: 0, stop: ["D."] }));
    // Cut off inside an emoji: the flushed U+FFFD carries its first bytes.
    scheduler.submit(2, request("Then", 3, { logprobs: 0 }));
    // "x", "a", "a", "c" with the stop "ab": each "a" is held back in turn, and released by the token after it.
    scheduler.submit(3, request("Then", 4, { logprobs: 0, stop: ["ab"] }));
    await close();
    expect(eventsOf(3).map((e) => e.type === "token" && e.text)).toEqual(["x", "a", "ac", false]);
    expect(tokensOf(eventsOf(3))).toEqual([["x"], ["a"], ["a", "c"], undefined]);
    expect(eventsOf(1).map((e) => e.type === "token" && e.text)).toEqual([" the", "é", " LOR", false]);
    expect(tokensOf(eventsOf(1))).toEqual([[" the"], ["bytes:\\xc3", "bytes:\\xa9"], [" LORD"], undefined]);
    expect(doneOf(eventsOf(1))).toMatchObject({ finishReason: "stop", usage: { completionTokens: 5 } });
    expect(eventsOf(2).map((e) => e.type === "token" && e.text)).toEqual(["a", "\uFFFD", false]);
    expect(tokensOf(eventsOf(2))).toEqual([["a"], ["bytes:\\xf0", "bytes:\\x9f"], undefined]);
  });

  test("none computed unless asked", async () => {
    const { scheduler, eventsOf, close } = start(new FakeModel({ 1: [THE, LORD] }));
    scheduler.submit(1, request("Then", 2));
    await close();
    for (const event of eventsOf(1)) expect(event).not.toHaveProperty("logprobs");
  });

  test("prompt log-probabilities come first: every prompt token given the ones before it, the first with none", async () => {
    const { scheduler, eventsOf, close } = start(new FakeModel({ 1: [THE] }));
    const ids = codec.encode("In the beginning");
    scheduler.submit(1, request("In the beginning", 1, { logprobs: 1, promptLogprobs: true }));
    await close();
    const prompt = eventsOf(1)[0]!;
    expect(prompt.type).toBe("prompt");
    const tokens = prompt.type === "prompt" ? prompt.tokens : [];
    expect(tokens.map((t) => t.token)).toEqual(ids.map((id) => codec.tokenText(id).token));
    expect(tokens[0]).toMatchObject({ logprob: null, top: [] });
    for (let i = 1; i < ids.length; i++) {
      expect(tokens[i]!.logprob).toBeCloseTo(logSoftmax(logitsPreferring(ids[i]!))[ids[i]!]!, 10);
      expect(tokens[i]!.top.map((t) => t.token)).toEqual([codec.tokenText(ids[i]!).token]);
    }
  });
});
