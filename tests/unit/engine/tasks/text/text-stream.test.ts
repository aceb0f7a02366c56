/** Incremental detokenization, stop sequences, sampling and log-probabilities, without a model. */
import { describe, expect, test } from "bun:test";
import { logSumExp } from "../../../../../src/engine/tasks/text/logprobs.ts";
import { argmax, mostLikely, sampleToken, seededRandom, TokenSampler } from "../../../../../src/engine/tasks/text/sampling.ts";
import { ByteLevelDecoder, byteLevelPieces, detokenizerFor, IncrementalDecoder, StopMatcher, type Detokenizer } from "../../../../../src/engine/tasks/text/text-stream.ts";
import { decode, loadTokenizer, tinyCodec } from "../../../../helpers/text-model.ts";
import { Tokenizer } from "@huggingface/tokenizers";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const tokenizer = loadTokenizer();

describe("UTF-8 and incremental detokenization", () => {
  const texts = [
    "Ézéchiel — 3:16, naïve café; 1234567 apples & 89 pears!?",
    "日本語のテキスト and emoji 🙂 mixed with ASCII. 👨‍👩‍👧",
    " And the LORD said unto Moses,\n\tGo.  ",
  ];

  test("non-ASCII text round-trips through encode/decode", () => {
    for (const text of texts) expect(decode(tokenizer, tokenizer.encode(text).ids)).toBe(text);
  });

  test("token by token, only whole characters are released, and the pieces add up to the text", () => {
    for (const text of texts) {
      const ids = tokenizer.encode(text).ids;
      const decoder = new IncrementalDecoder((x) => decode(tokenizer, x));
      const pieces = ids.map((id) => decoder.push(id));
      pieces.push(decoder.flush());
      expect(pieces.join("")).toBe(text);
      for (const piece of pieces) expect(piece).not.toContain("\uFFFD");
      // A 4-byte emoji is split over byte tokens: some tokens release nothing until it is complete.
      if (text.includes("🙂")) expect(pieces.some((p) => p === "")).toBe(true);
    }
  });

  test("an incomplete character at the end is flushed as U+FFFD", () => {
    const ids = tokenizer.encode("🙂").ids;
    expect(ids.length).toBeGreaterThan(1);
    const decoder = new IncrementalDecoder((x) => decode(tokenizer, x));
    expect(decoder.push(ids[0]!)).toBe("");
    expect(decoder.flush()).toContain("\uFFFD");
  });
});

describe("byte-level detokenization", () => {
  const texts = [
    "Ézéchiel — 3:16, naïve café; 1234567 apples & 89 pears!?",
    "日本語のテキスト and emoji 🙂 mixed with ASCII. 👨‍👩‍👧",
    "In the beginning<|endoftext|> And the LORD said unto Moses,\n\tGo.  ",
  ];
  const run = (detokenizer: Detokenizer, ids: number[]) => {
    const pieces = ids.map((id) => detokenizer.push(id));
    pieces.push(detokenizer.flush());
    return pieces;
  };
  // Ids drawn at random from the whole vocabulary: split and invalid UTF-8, special tokens anywhere.
  const randomIds = (vocab: number, n: number, seed: number) => {
    const random = seededRandom(seed);
    return Array.from({ length: n }, () => Math.floor(random() * vocab));
  };

  for (const [name, dir] of [["the test model", undefined], ["kjv-gpt", join(import.meta.dir, "..", "..", "..", "..", "..", "models", "kjv-gpt")]] as const) {
    test(`${name}: the shipped tokenizer takes the byte path, and it gives exactly what the tokenizer decodes`, () => {
      const tok = loadTokenizer(dir);
      const pieces = byteLevelPieces(tok);
      expect(pieces).toBeDefined();
      const vocab = tok.get_vocab(true).size;
      const cases = [...texts.map((t) => tok.encode(t).ids), ...[1, 2, 3, 4, 5].map((seed) => randomIds(vocab, 300, seed))];
      for (const ids of cases) {
        const out = run(new ByteLevelDecoder(pieces!), ids);
        expect(out.join("")).toBe(decode(tok, ids));
        // The same text as the window-decoding detokenizer, though it may be cut into pieces differently.
        expect(out.join("")).toBe(run(new IncrementalDecoder((x) => decode(tok, x)), ids).join(""));
      }
    });
  }

  test("whole characters only: a split emoji releases nothing until its last byte, and a cut-off one flushes as U+FFFD", () => {
    const pieces = byteLevelPieces(tokenizer)!;
    const ids = tokenizer.encode("a🙂b").ids;
    const out = run(new ByteLevelDecoder(pieces), ids);
    expect(out.join("")).toBe("a🙂b");
    for (const piece of out) expect(piece).not.toContain("\uFFFD");
    expect(out.some((p) => p === "")).toBe(true);
    const cut = new ByteLevelDecoder(pieces);
    const emoji = tokenizer.encode("🙂").ids;
    expect(cut.push(emoji[0]!)).toBe("");
    expect(cut.flush()).toBe("\uFFFD");
  });

  test("an added token that is not special decodes as its content, after the bytes before it", () => {
    const json = JSON.parse(readFileSync(join(import.meta.dir, "..", "..", "..", "..", "fixtures", "tiny-lm", "tokenizer.json"), "utf8"));
    const id = Math.max(...json.added_tokens.map((t: { id: number }) => t.id)) + 1;
    json.added_tokens.push({ id, content: "<sep>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: false });
    const tok = new Tokenizer(json, {});
    const emoji = tok.encode("🙂").ids;
    const ids = [...tok.encode("x").ids, emoji[0]!, id, ...tok.encode(" y").ids];
    const out = run(detokenizerFor(tok, json.decoder, (x) => decode(tok, x))(), ids);
    expect(out.join("")).toBe(decode(tok, ids));
    expect(out.join("")).toBe("x\uFFFD<sep> y");
  });

  test("a tokenizer that does not decode byte-level (here: Metaspace) gets the window-decoding detokenizer", () => {
    const tok = loadTokenizer();
    expect(detokenizerFor(tok, { type: "Metaspace", replacement: "▁" }, (x) => decode(tok, x))()).toBeInstanceOf(IncrementalDecoder);
    expect(detokenizerFor(tok, { type: "ByteLevel" }, (x) => decode(tok, x))()).toBeInstanceOf(ByteLevelDecoder);
  });

  test("an id past the vocabulary (logits padded wider) stands for no text", () => {
    const decoder = new ByteLevelDecoder(byteLevelPieces(tokenizer)!);
    expect(decoder.push(1_000_000)).toBe("");
  });
});

describe("StopMatcher", () => {
  const feed = (stops: string[], pieces: string[]) => {
    const m = new StopMatcher(stops);
    const out: string[] = [];
    for (const p of pieces) {
      const r = m.push(p);
      out.push(r.text);
      if (r.stopped) return { out, stopped: true };
    }
    out.push(m.flush());
    return { out, stopped: false };
  };

  test("holds back a possible start of a stop sequence until it is decided", () => {
    expect(feed(["\n\n"], ["Amen", ".\n", "\nNext"])).toEqual({ out: ["Amen", ".", ""], stopped: true });
    expect(feed(["\n\n"], ["Amen", ".\n", "And"])).toEqual({ out: ["Amen", ".", "\nAnd", ""], stopped: false });
  });

  test("a stop split over many pieces; the earliest of several wins; text after it is dropped", () => {
    expect(feed(["LORD"], ["the L", "O", "R", "D said"])).toEqual({ out: ["the ", "", "", ""], stopped: true });
    expect(feed(["said", "the"], ["And the LORD said"])).toEqual({ out: ["And "], stopped: true });
  });

  test("a held prefix that never completes is released at the end", () => {
    expect(feed(["LORD!"], ["the LORD"])).toEqual({ out: ["the ", "LORD"], stopped: false });
  });

  test("no stops: everything passes straight through", () => {
    expect(feed([], ["a", "b"])).toEqual({ out: ["a", "b", ""], stopped: false });
  });
});

describe("sampling", () => {
  const logits = Float32Array.from([0.1, 2.5, -1, 2.4, 0, 1.9, -3, 2.5]);

  test("temperature 0 is argmax (ties: the lower id)", () => {
    expect(argmax(logits)).toBe(1);
    expect(sampleToken(logits, { temperature: 0, topK: 0, topP: 1 }, () => 0.999)).toBe(1);
  });

  test("top-k keeps only the k most likely; top-p the smallest set reaching p", () => {
    const random = seededRandom(1);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(sampleToken(logits, { temperature: 1, topK: 3, topP: 1 }, random));
    expect([...seen].sort()).toEqual([1, 3, 7]);
    seen.clear();
    for (let i = 0; i < 500; i++) seen.add(sampleToken(logits, { temperature: 1, topK: 0, topP: 0.01 }, random));
    expect([...seen]).toEqual([1]);
    // Temperature sharpens before the filters: very low temperature leaves the tied top two.
    seen.clear();
    for (let i = 0; i < 500; i++) seen.add(sampleToken(logits, { temperature: 0.001, topK: 0, topP: 1 }, random));
    expect([...seen].sort()).toEqual([1, 7]);
  });

  test("top-k with a large vocabulary matches a sort", () => {
    const random = seededRandom(9);
    const big = Float32Array.from({ length: 5000 }, () => random() * 10);
    const top = [...big.keys()].sort((a, b) => big[b]! - big[a]!).slice(0, 5);
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) seen.add(sampleToken(big, { temperature: 0.5, topK: 5, topP: 1 }, random));
    for (const t of seen) expect(top).toContain(t);
    // Nucleus over a large vocabulary (pruned before sorting) still never leaves the most likely tokens.
    const order = [...big.keys()].sort((a, b) => big[b]! - big[a]!);
    for (let i = 0; i < 300; i++) expect(order.indexOf(sampleToken(big, { temperature: 0.2, topK: 0, topP: 0.5 }, random))).toBeLessThan(200);
  });

  test("the generator is deterministic per seed, different across seeds, and sees both halves of a large seed", () => {
    const draw = (seed: number) => Array.from({ length: 5 }, seededRandom(seed));
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
    expect(draw(1)).not.toEqual(draw(1 + 2 ** 32));
    for (const x of draw(7)) expect(x >= 0 && x < 1).toBe(true);
  });
});

describe("TokenSampler: penalties, bias and min_tokens", () => {
  const off = { presencePenalty: 0, frequencyPenalty: 0, logitBias: new Map<number, number>(), minTokens: 0 };
  const greedyWith = (adjustments: Partial<typeof off>, eosId?: number) =>
    new TokenSampler({ temperature: 0, topK: 0, topP: 1, ...off, ...adjustments }, seededRandom(1), eosId);
  const draw = (sampler: TokenSampler, logits: Float32Array, n: number) => Array.from({ length: n }, () => sampler.next(logits));
  const logits = Float32Array.from([3, 1.5, 1.25, -2]);

  test("without adjustments, the model's choice every time", () => {
    expect(draw(greedyWith({}), logits, 4)).toEqual([0, 0, 0, 0]);
  });

  test("frequency penalty grows with each repetition; presence penalty is paid once", () => {
    // Token 0 falls by 1 per draw (3, 2, 1, ...), so the others get their turns.
    expect(draw(greedyWith({ frequencyPenalty: 1 }), logits, 6)).toEqual([0, 0, 1, 2, 0, 1]);
    // Once drawn, token 0 stands at 2, or 1.4, for good.
    expect(draw(greedyWith({ presencePenalty: 1 }), logits, 4)).toEqual([0, 0, 0, 0]);
    expect(draw(greedyWith({ presencePenalty: 1.6 }), logits, 4)).toEqual([0, 1, 0, 0]);
  });

  test("the bias is added to the logit; the EOS token waits for minTokens; the logits handed in are left as they were", () => {
    expect(draw(greedyWith({ logitBias: new Map([[3, 5.5]]) }), logits, 2)).toEqual([3, 3]);
    expect(draw(greedyWith({ minTokens: 2 }, 0), logits, 4)).toEqual([1, 1, 0, 0]);
    expect(draw(greedyWith({ minTokens: 2 }), logits, 2)).toEqual([0, 0]); // no EOS token: nothing to hold back
    expect(Array.from(logits)).toEqual([3, 1.5, 1.25, -2]);
  });
});

describe("log-probabilities", () => {
  test("log-softmax's normaliser, and the most likely ids, largest first, ties to the lower id", () => {
    const logits = Float32Array.from([1, 3, 2, 3, -1, 2]);
    const norm = Math.log([1, 3, 2, 3, -1, 2].reduce((s, x) => s + Math.exp(x), 0));
    expect(logSumExp(logits)).toBeCloseTo(norm, 12);
    expect(mostLikely(logits, 4)).toEqual([1, 3, 2, 5]);
    expect(mostLikely(logits, 0)).toEqual([]);
    expect(mostLikely(logits, 10)).toEqual([1, 3, 2, 5, 0, 4]);
  });

  test("a token's text: valid UTF-8 as text, a lone byte in OpenAI's bytes: form, a special token as its content", () => {
    const codec = tinyCodec();
    const [first, second] = tokenizer.encode("é").ids;
    expect(codec.tokenText(tokenizer.token_to_id("ĠLORD")!)).toEqual({ token: " LORD", bytes: [0x20, 0x4c, 0x4f, 0x52, 0x44] });
    expect(codec.tokenText(first!)).toEqual({ token: "bytes:\\xc3", bytes: [0xc3] });
    expect(codec.tokenText(second!)).toEqual({ token: "bytes:\\xa9", bytes: [0xa9] });
    expect(codec.tokenText(codec.eosId!)).toEqual({ token: "<|endoftext|>", bytes: Array.from(new TextEncoder().encode("<|endoftext|>")) });
  });
});
