/** TextGenerator against the tiny fixture LM: correctness of continuous batching, sampling, stops, limits. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EngineError } from "../../../../../src/engine/errors.ts";
import { readManifestOf } from "../../../../../src/engine/registry/manifest.ts";
import { TextGenerator } from "../../../../../src/engine/tasks/text/generator.ts";
import { PREFILL_TOKEN_BUDGET, prefillGroups, prefillTokenBudget } from "../../../../../src/engine/tasks/text/prefill.ts";
import { collect, type Collected, greedy, logSoftmax, ReferenceDecoder, run, sampled, statsReach, TEST_OPTIONS, TINY_LM, tinyManifest } from "../../../../helpers/text-model.ts";

let generator: TextGenerator;
let reference: ReferenceDecoder;
const extra: TextGenerator[] = [];

beforeAll(async () => {
  [generator, reference] = await Promise.all([TextGenerator.create(TINY_LM, tinyManifest(), TEST_OPTIONS), ReferenceDecoder.load()]);
});

afterAll(async () => {
  await Promise.all([generator?.close(), reference?.close(), ...extra.map((g) => g.close())]);
});

async function another(options: Partial<typeof TEST_OPTIONS>): Promise<TextGenerator> {
  const g = await TextGenerator.create(TINY_LM, tinyManifest(), { ...TEST_OPTIONS, ...options });
  extra.push(g);
  return g;
}

async function rejection(promise: Promise<unknown>): Promise<EngineError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof EngineError) return error;
    throw error;
  }
  throw new Error("expected an EngineError");
}

const PROMPTS = [
  "In the beginning",
  "And God said, Let there be light",
  "Jesus wept.",
  "The LORD is my shepherd; I shall not want.",
  "And it came to pass",
  "Blessed are the meek: for they shall inherit",
  "Ézéchiel — naïve café",
  "Then",
];

describe("greedy decoding", () => {
  test("equals a plain batch-1 reference loop", async () => {
    for (const prompt of PROMPTS.slice(0, 4)) {
      const expected = await reference.greedy(prompt, 30);
      const got = await run(generator, greedy(prompt, 30));
      expect(got.text).toBe(expected.text);
      expect(got.finishReason).toBe(expected.finishReason);
      expect(got.promptTokens).toBe(expected.promptIds.length);
      expect(got.usage.completionTokens).toBe(expected.ids.length);
    }
  });

  test("continuous batching: streams joining mid-flight and leaving at different times give each one's own text", async () => {
    // Three slots for eight streams with different lengths: the later ones wait, then join a running batch as
    // earlier ones finish, so rows of different lengths (left padding) come and go while others keep decoding.
    const small = await another({ maxStreams: 3 });
    const lengths = [5, 30, 12, 20, 8, 25, 3, 17];
    const expected = await Promise.all(PROMPTS.map((p, i) => reference.greedy(p, lengths[i]!)));
    const before = small.stats().steps;
    let joinedMidFlight = 0;
    let queued = Infinity;
    const off = small.onStats((s) => {
      if (s.queued < queued && s.steps > before + 1) joinedMidFlight++;
      queued = s.queued;
    });
    const got = await Promise.all(PROMPTS.map((p, i) => run(small, greedy(p, lengths[i]!))));
    off();
    got.forEach((g, i) => {
      expect(g.text).toBe(expected[i]!.text);
      expect(g.usage.completionTokens).toBe(expected[i]!.ids.length);
    });
    expect(joinedMidFlight).toBeGreaterThan(0);
    const steps = small.stats().steps - before;
    expect(steps).toBeLessThan(got.reduce((n, g) => n + g.usage.completionTokens, 0));

    // And one joining whenever its predecessor has produced a token (timing decides where in its run).
    const late: Promise<Collected>[] = [];
    const first = await generator.generate(greedy(PROMPTS[0]!, 40));
    const firstDone = (async () => {
      const pieces: string[] = [];
      let n = 0;
      for await (const event of first.events) {
        if (event.type !== "token") continue;
        pieces.push(event.text);
        if (n++ < 3) late.push(run(generator, greedy(PROMPTS[n]!, 10 + 5 * n)));
      }
      return pieces.join("");
    })();
    expect(await firstDone).toBe((await reference.greedy(PROMPTS[0]!, 40)).text);
    const lateResults = await Promise.all(late);
    for (let n = 1; n <= lateResults.length; n++) expect(lateResults[n - 1]!.text).toBe((await reference.greedy(PROMPTS[n]!, 10 + 5 * n)).text);
  });

  test("batching happens: 8 concurrent streams take far fewer steps than 8 × tokens", async () => {
    const tokens = 20;
    const expected = await Promise.all(PROMPTS.map((p) => reference.greedy(p, tokens)));
    const before = generator.stats().steps;
    const results = await Promise.all(PROMPTS.map((p) => run(generator, greedy(p, tokens))));
    results.forEach((r, i) => expect(r.usage.completionTokens).toBe(expected[i]!.ids.length));
    const total = results.reduce((n, r) => n + r.usage.completionTokens, 0);
    expect(total).toBeGreaterThan(6 * tokens); // a few prompts end their verse (EOS) early
    const steps = generator.stats().steps - before;
    expect(steps).toBeLessThanOrEqual(2 * tokens);
    expect(steps).toBeLessThan(total / 3);
    expect(generator.stats()).toMatchObject({ active: 0, queued: 0 });
  });
});

describe("batched prefill", () => {
  test("streams submitted together are prefilled in fewer ONNX runs than streams, each giving exactly its text alone", async () => {
    // Prompts of 2 to 21 tokens share a left-padded prefill run.
    const lengths = [30, 12, 25, 5, 40, 17, 8, 21];
    const alone: Collected[] = [];
    for (const [i, p] of PROMPTS.entries()) alone.push(await run(generator, greedy(p, lengths[i]!)));
    const expected = await Promise.all(PROMPTS.map((p, i) => reference.greedy(p, lengths[i]!)));
    alone.forEach((a, i) => expect(a.text).toBe(expected[i]!.text));

    const before = generator.stats();
    const together = await Promise.all(PROMPTS.map((p, i) => run(generator, greedy(p, lengths[i]!))));
    const after = generator.stats();
    together.forEach((t, i) => {
      expect(t.text).toBe(alone[i]!.text);
      expect(t.pieces).toEqual(alone[i]!.pieces);
      expect(t.finishReason).toBe(alone[i]!.finishReason);
      expect(t.usage).toEqual(alone[i]!.usage);
    });
    const prefills = after.prefills - before.prefills;
    expect(prefills).toBeGreaterThanOrEqual(1);
    // Usually one run; a burst's messages may reach the worker on both sides of a run, so allow a few.
    expect(prefills).toBeLessThanOrEqual(PROMPTS.length / 2);

    // Seeded sampling too: the same text whichever prefill group a stream lands in.
    const params = PROMPTS.map((p, i) => sampled(p, 20, 500 + i));
    const sampledAlone: string[] = [];
    for (const p of params) sampledAlone.push((await run(generator, p)).text);
    expect((await Promise.all(params.map((p) => run(generator, p)))).map((r) => r.text)).toEqual(sampledAlone);
  });

  test("groups stay within the padded-token budget; a prompt longer than it runs alone", () => {
    const budget = 100;
    const lengths = [90, 3, 10, 150, 9, 40, 12, 5, 11, 30];
    const groups = prefillGroups(lengths, (n) => n, budget);
    expect(groups.flat().sort((a, b) => a - b)).toEqual([...lengths].sort((a, b) => a - b));
    for (const g of groups) {
      if (g.length > 1) expect(g.length * Math.max(...g)).toBeLessThanOrEqual(budget);
    }
    expect(groups.find((g) => g.includes(150))).toEqual([150]);
    expect(groups.length).toBeLessThan(lengths.length);
    // Sixteen verse-sized prompts fit in one run under the default budget.
    expect(prefillGroups(Array(16).fill(20), (n) => n)).toHaveLength(1);
    expect(PREFILL_TOKEN_BUDGET).toBeGreaterThanOrEqual(16 * 64);
    // A big vocabulary lowers it, so that one run's logits (every position × the vocabulary) stay bounded.
    expect(prefillTokenBudget(4096)).toBe(PREFILL_TOKEN_BUDGET);
    expect(prefillTokenBudget(50_257)).toBeLessThan(PREFILL_TOKEN_BUDGET);
    expect(prefillTokenBudget(50_257) * 50_257).toBeLessThanOrEqual(2 ** 24);
  });
});

describe("sampling", () => {
  test("the same seed gives the same text; different seeds (very likely) different text", async () => {
    const a = await run(generator, sampled("And God said", 20, 1234));
    const b = await run(generator, sampled("And God said", 20, 1234));
    expect(b.text).toBe(a.text);
    expect(b.usage).toEqual(a.usage);
    const others = await Promise.all([1, 2, 3, 4, 5].map((seed) => run(generator, sampled("And God said", 20, seed))));
    expect(new Set([a.text, ...others.map((o) => o.text)]).size).toBeGreaterThan(2);
  });

  test("without a seed, runs differ (very likely)", async () => {
    const texts = await Promise.all([0, 1, 2, 3].map(() => run(generator, sampled("And God said", 20, undefined))));
    expect(new Set(texts.map((t) => t.text)).size).toBeGreaterThan(1);
  });

  test("a seeded stream gives the same text alone and among 7 other concurrent streams", async () => {
    const params = PROMPTS.map((p, i) => sampled(p, 24, 100 + i));
    const alone: string[] = [];
    for (const p of params) alone.push((await run(generator, p)).text);
    const together = await Promise.all(params.map((p) => run(generator, p)));
    expect(together.map((t) => t.text)).toEqual(alone);
  });

  test("stops at the EOS token: finish 'stop', its text not emitted, counted as a completion token", async () => {
    // The tiny model ends verses with EOS now and then; look among seeds for a run that does.
    const runs = await Promise.all(Array.from({ length: 16 }, (_, seed) => run(generator, { ...sampled("Jesus wept.", 50, seed), temperature: 1, topK: 0, topP: 1 })));
    const stopped = runs.filter((r) => r.finishReason === "stop");
    expect(stopped.length).toBeGreaterThan(0);
    for (const r of stopped) {
      expect(r.usage.completionTokens).toBeLessThan(50);
      expect(r.text).not.toContain("<|endoftext|>");
    }
  });
});

describe("finishing", () => {
  test("max_tokens: finish 'length', completion_tokens == max_tokens, usage adds up", async () => {
    for (const maxTokens of [1, 2, 17]) {
      const r = await run(generator, greedy("In the beginning God created", maxTokens));
      const prompt = reference.tokenizer.encode("In the beginning God created").ids.length;
      expect(r.finishReason).toBe("length");
      expect(r.usage).toEqual({ promptTokens: prompt, completionTokens: maxTokens, totalTokens: prompt + maxTokens });
      expect(r.promptTokens).toBe(prompt);
      expect(r.pieces.every((p) => p.index >= 0 && p.index < maxTokens && p.text.length > 0)).toBe(true);
    }
  });

  test("stop sequences: text ends before the earliest stop, finish 'stop', tokens counted up to the one completing it", async () => {
    const prompt = "In the beginning";
    const full = await reference.greedy(prompt, 40);
    const tokensUntil = (stop: string) => {
      for (let k = 1; k <= full.ids.length; k++) if (reference.tokenizer.decode(full.ids.slice(0, k), { clean_up_tokenization_spaces: false }).includes(stop)) return k;
      throw new Error(`the reference text never contains ${stop}`);
    };
    // " LORD" is one token; "e LO" spans two; "D, a" spans three; of several stops the earliest wins.
    for (const stops of [[" LORD"], ["e LO"], ["D, a"], ["zzz", "the", "LORD"]]) {
      const r = await run(generator, greedy(prompt, 40, stops));
      const at = Math.min(...stops.map((s) => full.text.indexOf(s)).filter((i) => i >= 0));
      const stop = stops.find((s) => full.text.indexOf(s) === at)!;
      expect(r.finishReason).toBe("stop");
      expect(r.text).toBe(full.text.slice(0, at));
      expect(r.usage.completionTokens).toBe(tokensUntil(stop));
      expect(r.pieces.map((p) => p.text).join("")).not.toContain(stop);
    }
    // A stop that never appears changes nothing; a prefix of it held back is released at the end.
    const never = await run(generator, greedy(prompt, 40, ["LORD!"]));
    expect(never).toMatchObject({ text: full.text, finishReason: "length" });
  });

  test("maxGenerationMs: a generation running longer ends with finish 'length'", async () => {
    const hurried = await another({ maxGenerationMs: 1 });
    const r = await run(hurried, greedy("In the beginning", 45));
    expect(r.finishReason).toBe("length");
    expect(r.usage.completionTokens).toBeLessThan(45);
    expect(r.text).toBe((await reference.greedy("In the beginning", r.usage.completionTokens)).text);
  });
});

describe("what changes the distribution: penalties, logit bias, min_tokens, ignore_eos", () => {
  const EOS = 511;
  /** OpenAI's penalties over the tokens generated so far, the plain way. */
  const penalties = (frequency: number, presence: number) => (logits: Float32Array, generated: readonly number[]) => {
    const counts = new Map<number, number>();
    for (const id of generated) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const [id, count] of counts) logits[id]! -= frequency * count + presence;
  };
  const mostRepeats = (ids: number[]) => Math.max(...[...new Set(ids)].map((id) => ids.filter((x) => x === id).length));

  test("a large frequency penalty stops greedy decoding from repeating itself; presence and frequency penalties differ", async () => {
    const prompt = "In the beginning";
    const plain = await reference.greedy(prompt, 30);
    expect(plain.text).toStartWith(", and the LORD, and the LORD, and the LORD");
    expect(mostRepeats(plain.ids)).toBeGreaterThanOrEqual(5);

    const strong = await reference.greedy(prompt, 30, { adjust: penalties(2, 0) });
    expect(mostRepeats(strong.ids)).toBe(1);
    expect(await run(generator, { ...greedy(prompt, 30), frequencyPenalty: 2 })).toMatchObject({ text: strong.text, usage: { completionTokens: strong.ids.length } });

    // 0.3 per occurrence soon outweighs the repetition; 0.3 once does not.
    const frequency = await run(generator, { ...greedy(prompt, 30), frequencyPenalty: 0.3 });
    const presence = await run(generator, { ...greedy(prompt, 30), presencePenalty: 0.3 });
    expect(frequency.text).toBe((await reference.greedy(prompt, 30, { adjust: penalties(0.3, 0) })).text);
    expect(presence.text).toBe((await reference.greedy(prompt, 30, { adjust: penalties(0, 0.3) })).text);
    expect(frequency.text).not.toBe(presence.text);
    expect(presence.text).toBe(plain.text);
    // A presence penalty of 1 is enough on its own.
    const strongPresence = await reference.greedy(prompt, 30, { adjust: penalties(0, 1) });
    expect(strongPresence.text).not.toBe(plain.text);
    expect((await run(generator, { ...greedy(prompt, 30), presencePenalty: 1 })).text).toBe(strongPresence.text);
  });

  test("logit bias: +100 forces greedy decoding to a token, -100 on its choice changes it; an id outside the vocabulary is refused", async () => {
    const prompt = "In the beginning";
    const LORD = reference.tokenizer.token_to_id("ĠLORD")!;
    const forced = await run(generator, { ...greedy(prompt, 10), logitBias: new Map([[LORD, 100]]) });
    expect(forced.text).toBe(" LORD".repeat(10));

    const plain = await reference.greedy(prompt, 10);
    const avoided = await run(generator, { ...greedy(prompt, 10), logitBias: new Map([[plain.ids[0]!, -100]]) });
    expect(avoided.text).not.toStartWith(reference.tokenizer.decode([plain.ids[0]!]));
    expect(avoided.text).toBe((await reference.greedy(prompt, 10, { adjust: (logits) => void (logits[plain.ids[0]!]! -= 100) })).text);

    const outside = await rejection(generator.generate({ ...greedy(prompt, 10), logitBias: new Map([[512, 5]]) }));
    expect(outside).toMatchObject({ code: "invalid_input", message: "the logit bias names token 512, but the model's vocabulary has 512 tokens (ids 0 to 511)" });
  });

  test("min_tokens holds the EOS token back until that many tokens are generated, unless max_tokens comes first", async () => {
    // Greedy decoding ends this verse at once.
    expect(await reference.greedy("Jesus wept.", 40)).toMatchObject({ ids: [EOS], finishReason: "stop" });
    const plain = await run(generator, greedy("Jesus wept.", 40));
    expect(plain).toMatchObject({ text: "", finishReason: "stop", usage: { completionTokens: 1 } });

    for (const [minTokens, maxTokens] of [[10, 40], [10, 5]] as const) {
      const r = await run(generator, { ...greedy("Jesus wept.", maxTokens), minTokens });
      const expected = await reference.greedy("Jesus wept.", maxTokens, { adjust: (logits, generated) => void (generated.length < minTokens && (logits[EOS] = -Infinity)) });
      expect(r.text).toBe(expected.text);
      expect(r.usage.completionTokens).toBe(expected.ids.length);
      expect(r.usage.completionTokens).toBeGreaterThanOrEqual(Math.min(minTokens, maxTokens));
    }
  });

  test("ignore_eos: the EOS token counts as a token with no text, and generation runs on to max_tokens", async () => {
    const r = await run(generator, { ...greedy("Jesus wept.", 20), ignoreEos: true });
    const expected = await reference.greedy("Jesus wept.", 20, { ignoreEos: true });
    expect(expected.ids[0]).toBe(EOS);
    expect(r).toMatchObject({ text: expected.text, finishReason: "length", usage: { completionTokens: 20 } });
    expect(r.text).toStartWith("And the LORD");
  });
});

describe("log-probabilities", () => {
  const vocab = 512;
  const utf8 = (text: string) => Array.from(new TextEncoder().encode(text));

  test("each sampled token's is the log-softmax of the model's logits; the alternatives are the most likely, the greedy token first", async () => {
    const prompt = "And God said, Let there be light";
    const expected = await reference.greedy(prompt, 20);
    expect(expected.finishReason).toBe("length");
    const r = await run(generator, { ...greedy(prompt, 20), logprobs: 4 });
    expect(r.text).toBe(expected.text);
    const logprobs = r.pieces.flatMap((p) => p.logprobs ?? []);
    expect(logprobs).toHaveLength(expected.ids.length);
    const n = expected.promptIds.length;
    const logits = await reference.logits([...expected.promptIds, ...expected.ids]);
    logprobs.forEach((l, k) => {
      const plain = logSoftmax(logits.subarray((n - 1 + k) * vocab, (n + k) * vocab));
      const ranked = [...plain.keys()].sort((a, b) => plain[b]! - plain[a]! || a - b);
      const id = expected.ids[k]!;
      expect(l.token).toBe(reference.tokenizer.decode([id]));
      expect(l.bytes).toEqual(utf8(l.token));
      expect(l.logprob).toBeCloseTo(plain[id]!, 4);
      expect(l.top.map((t) => t.token)).toEqual(ranked.slice(0, 4).map((i) => reference.tokenizer.decode([i])));
      l.top.forEach((t, i) => expect(t.logprob).toBeCloseTo(plain[ranked[i]!]!, 4));
      expect(l.top[0]).toEqual({ token: l.token, bytes: l.bytes, logprob: l.logprob });
    });
    // Without a stop sequence, the tokens' bytes are the completion's.
    expect(logprobs.flatMap((l) => l.bytes)).toEqual(utf8(r.text));
  });

  test("sampled at a high temperature, with bytes that complete no character alone: the tokens' bytes still make the completion", async () => {
    let carriedTogether = 0;
    for (const seed of [11, 20, 35]) {
      const r = await run(generator, { ...sampled("Ézéchiel — naïve café", 30, seed), temperature: 1.6, topK: 0, topP: 1, logprobs: 0 });
      const bytes = r.pieces.flatMap((p) => p.logprobs!.flatMap((l) => l.bytes));
      expect(new TextDecoder().decode(Uint8Array.from(bytes))).toBe(r.text);
      for (const piece of r.pieces) expect(piece.logprobs!.every((l) => l.top.length === 0)).toBe(true);
      // A lone lead byte releases nothing until the next token shows it is no character's start: both go together.
      carriedTogether += r.pieces.filter((p) => p.logprobs!.length > 1 && p.logprobs![0]!.token.startsWith("bytes:\\x")).length;
    }
    expect(carriedTogether).toBeGreaterThan(0);
  });

  test("the prompt's come first when asked: one per prompt token, the first with none", async () => {
    const prompt = "And it came to pass";
    const ids = reference.tokenizer.encode(prompt).ids;
    const r = await run(generator, { ...greedy(prompt, 3), logprobs: 2, promptLogprobs: true });
    const tokens = r.prompt!.tokens;
    expect(tokens.map((t) => t.token)).toEqual(ids.map((id) => reference.tokenizer.decode([id])));
    expect(tokens[0]).toEqual({ token: "And", bytes: utf8("And"), logprob: null, top: [] });
    const logits = await reference.logits(ids);
    for (let i = 1; i < ids.length; i++) {
      const plain = logSoftmax(logits.subarray((i - 1) * vocab, i * vocab));
      expect(tokens[i]!.logprob).toBeCloseTo(plain[ids[i]!]!, 4);
      expect(tokens[i]!.top).toHaveLength(2);
      expect(tokens[i]!.top[0]!.logprob).toBeGreaterThanOrEqual(tokens[i]!.top[1]!.logprob);
    }
    // Not asked, not sent.
    expect((await run(generator, { ...greedy(prompt, 3), logprobs: 2 })).prompt).toBeUndefined();
  });

  test("with a stop sequence, each token goes with the event that releases its text first; the stop's tokens with none", async () => {
    // ", and the LORD": the stop "e LO" holds " the"'s last letter back, and " LORD" completes it.
    const r = await run(generator, { ...greedy("In the beginning", 40, ["e LO"]), logprobs: 0 });
    expect(r).toMatchObject({ text: ", and th", finishReason: "stop", usage: { completionTokens: 4 } });
    expect(r.pieces.map((p) => [p.text, p.logprobs!.map((l) => l.token)])).toEqual([
      [",", [","]],
      [" and", [" and"]],
      [" th", [" the"]],
    ]);
  });
});

describe("cancellation", () => {
  /**
   * The worker drops a cancelled stream before its next step, so its slot frees within a step or two of the
   * cancel reaching it; how many steps run meanwhile depends on the machine. These run on kjv-gpt, whose steps
   * are slow enough that a lagging main thread leaves plenty of room, and allow less than half of the steps the
   * stream still needed: a lost cancel lets it run every one of them.
   */
  let kjv: TextGenerator;
  const kjvDir = join(import.meta.dir, "..", "..", "..", "..", "..", "models", "kjv-gpt");
  beforeAll(async () => {
    kjv = await TextGenerator.create(kjvDir, readManifestOf(kjvDir, "text-generation"), TEST_OPTIONS);
    extra.push(kjv);
  });
  const long = (prompt: string, maxTokens: number) => ({ ...greedy(prompt, maxTokens), ignoreEos: true });
  const stepsUntil = async (g: TextGenerator, from: number, ok: (s: ReturnType<TextGenerator["stats"]>) => boolean) => {
    await statsReach(g, ok);
    return g.stats().steps - from;
  };

  test("aborting after the first token ends the iterator and frees the slot at once; other streams run on unchanged", async () => {
    const witnessParams = { ...sampled("The LORD is my shepherd", 150, 7), ignoreEos: true };
    const witnessAlone = await run(kjv, witnessParams);
    expect(witnessAlone.usage.completionTokens).toBe(150);

    const controller = new AbortController();
    const victim = await kjv.generate(long("And it came to pass", 200), controller.signal);
    const witness = run(kjv, witnessParams);
    await statsReach(kjv, (s) => s.active === 2);
    const iterator = victim.events[Symbol.asyncIterator]();
    expect((await iterator.next()).done).toBe(false);
    const abortedAt = kjv.stats().steps;
    controller.abort();
    expect(await iterator.next()).toEqual({ value: undefined, done: true });

    // Its slot frees long before either stream would end on its own.
    expect(await stepsUntil(kjv, abortedAt, (s) => s.active < 2)).toBeLessThan(75);
    expect((await witness).text).toBe(witnessAlone.text);
    await statsReach(kjv, (s) => s.active === 0);
    expect(kjv.stats()).toMatchObject({ active: 0, queued: 0 });
  });

  test("aborting the only stream frees its slot without waiting for it to finish", async () => {
    const controller = new AbortController();
    const { events } = await kjv.generate(long("Then", 200), controller.signal);
    let tokens = 0;
    let abortedAt = 0;
    for await (const event of events) {
      expect(event.type).toBe("token");
      tokens++;
      abortedAt = kjv.stats().steps;
      controller.abort();
    }
    expect(tokens).toBe(1);
    expect(await stepsUntil(kjv, abortedAt, (s) => s.active === 0)).toBeLessThan(100);
  });

  test("leaving the loop early (break) cancels too", async () => {
    const { events } = await kjv.generate(long("Then", 200));
    let brokeAt = 0;
    for await (const _ of events) {
      brokeAt = kjv.stats().steps;
      break;
    }
    expect(await stepsUntil(kjv, brokeAt, (s) => s.active === 0)).toBeLessThan(100);
  });

  test("aborting a request still waiting for a slot: it never runs", async () => {
    // kjv-gpt, one slot, held for 200 steps: the abort must land while the slot is still taken, however late.
    const single = await TextGenerator.create(kjvDir, readManifestOf(kjvDir, "text-generation"), { ...TEST_OPTIONS, maxStreams: 1 });
    extra.push(single);
    const first = await single.generate(long("In the beginning", 200));
    const controller = new AbortController();
    const waiting = await single.generate(greedy("Then", 40), controller.signal);
    await statsReach(single, (s) => s.queued === 1);
    const prefills = single.stats().prefills;
    controller.abort();
    expect(await collect(waiting.events).catch((e: Error) => e.message)).toBe("the events ended without done");
    await statsReach(single, (s) => s.queued === 0);
    expect((await collect(first.events)).usage.completionTokens).toBe(200);
    // Closing waits for everything admitted or queued: had the cancel been lost, it would have run by then.
    await single.close();
    expect(single.stats().prefills).toBe(prefills);
  });

  test("a signal aborted before the call rejects at once", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(generator.generate(greedy("Then", 5), controller.signal)).rejects.toThrow();
    expect(generator.stats()).toMatchObject({ active: 0, queued: 0 });
  });
});

describe("limits, checked before any event", () => {
  test("a prompt of no tokens, or too long for the context → invalid_input saying the numbers plainly", async () => {
    const empty = await rejection(generator.generate(greedy("", 5)));
    expect(empty).toMatchObject({ code: "invalid_input", message: "the prompt encodes to no tokens" });

    const long = "And the LORD spake unto Moses, saying, ".repeat(10);
    const n = reference.tokenizer.encode(long).ids.length;
    expect(n).toBeGreaterThan(64);
    const tooLong = await rejection(generator.generate(greedy(long, 5)));
    expect(tooLong).toMatchObject({
      code: "invalid_input",
      message: `the prompt is ${n} tokens and the model's context is 64 tokens, which leaves no room to generate`,
    });
  });

  test("prompt + maxTokens over the context: refused naming the numbers, or as many as fit with fitToContext", async () => {
    const prompt = "And the LORD spake unto Moses, saying, ".repeat(3);
    const p = reference.tokenizer.encode(prompt).ids.length;
    const over = await rejection(generator.generate(greedy(prompt, 64 - p + 7)));
    expect(over).toMatchObject({
      code: "invalid_input",
      message: `the prompt is ${p} tokens and the model's context is 64 tokens, so at most ${64 - p} tokens can be generated; ${64 - p + 7} were asked for`,
    });
    expect(over.message).not.toContain("max_tokens");
    // One token of room: "1 token", not "1 tokens".
    const ids = reference.tokenizer.encode(prompt.repeat(2)).ids.slice(0, 63);
    const full = reference.tokenizer.decode(ids, { clean_up_tokenization_spaces: false });
    expect(reference.tokenizer.encode(full).ids).toHaveLength(63);
    expect((await rejection(generator.generate(greedy(full, 2)))).message).toBe(
      "the prompt is 63 tokens and the model's context is 64 tokens, so at most 1 token can be generated; 2 were asked for",
    );
    // Exactly filling the context is fine; fitToContext generates what fits instead of refusing.
    const exact = await run(generator, greedy(prompt, 64 - p));
    expect(exact.usage.totalTokens).toBe(64);
    const fitted = await run(generator, { ...greedy(prompt, 500), fitToContext: true });
    expect(fitted).toMatchObject({ text: exact.text, finishReason: "length", usage: exact.usage });
  });

  test("a full queue → overloaded with retryAfter 1; queued requests join as slots free", async () => {
    const tight = await another({ maxStreams: 1, maxQueue: 1 });
    const a = tight.generate(greedy("In the beginning", 40));
    const b = tight.generate(greedy("Jesus wept.", 40));
    const c = tight.generate(greedy("Then", 40));
    const error = await rejection(c);
    expect(error.code).toBe("overloaded");
    expect(error.retryAfter).toBe(1);
    const [ra, rb] = await Promise.all([a.then((x) => collect(x.events)), b.then((x) => collect(x.events))]);
    expect(ra.text).toBe((await reference.greedy("In the beginning", 40)).text);
    expect(rb.text).toBe((await reference.greedy("Jesus wept.", 40)).text);
    expect(tight.stats()).toMatchObject({ active: 0, queued: 0 });
  });
});

describe("lifecycle", () => {
  test("selfTest() is one real generation: a prefill and a decode step", async () => {
    const before = generator.stats();
    await generator.selfTest();
    const after = generator.stats();
    expect(after.prefills - before.prefills).toBe(1);
    expect(after.steps - before.steps).toBe(1);
  });

  test("close() lets admitted generations finish, then refuses new ones with not_ready", async () => {
    const closing = await another({});
    const pending = closing.generate(greedy("In the beginning", 30));
    const { events } = await pending;
    const closed = closing.close();
    const r = await collect(events);
    expect(r.usage.completionTokens).toBe(30);
    await closed;
    expect((await rejection(closing.generate(greedy("Then", 5)))).code).toBe("not_ready");
  });

  test("a model whose eos_token is not in its tokenizer fails to load with load_failed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tiny-lm-bad-"));
    try {
      for (const f of ["model.onnx", "tokenizer.json"]) symlinkSync(join(TINY_LM, f), join(dir, f));
      const manifest = { ...tinyManifest(), eos_token: "<|nope|>" };
      writeFileSync(join(dir, "model.json"), JSON.stringify(manifest));
      const error = await rejection(TextGenerator.create(dir, manifest, TEST_OPTIONS));
      expect(error.code).toBe("load_failed");
      expect(error.message).toContain("<|nope|>");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
