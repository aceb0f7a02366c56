/**
 * The real model writes real words: models/kjv-gpt served by the real server, 300+ tokens sampled at temperature
 * 0.8 over successive seeds, split into alphabetic words; at least 80% must be English dictionary words
 * (/usr/share/dict/words, Debian package wamerican). Skipped while models/kjv-gpt has no model.onnx (training).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { KJV_GPT_DIR, kjvGptAvailable, textModelsDir } from "../helpers/generation.ts";
import { startServer, type RunningServer } from "../helpers/server.ts";

const DICTIONARY = "/usr/share/dict/words";
const TOTAL_TOKENS = 300;
// Verses end at end-of-text after a few dozen tokens, so seeds are taken in turn until the total is reached.
const MAX_SEEDS = 40;
const PROMPTS = ["In the beginning God created", "And the LORD spake unto Moses, saying,", "Blessed are the", "And it came to pass, when"];
const MIN_RATE = 0.8;

const available = kjvGptAvailable();
if (!available) console.warn(`skipping the real-words test: ${join(KJV_GPT_DIR, "model.onnx")} (and model.json) not there yet`);

describe.skipIf(!available)("kjv-gpt over HTTP", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ MODELS_DIR: textModelsDir({ "kjv-gpt": KJV_GPT_DIR }, false), MAX_TOKENS: "1024", DEFAULT_TEXT_MODEL: "kjv-gpt" });
  }, 120_000);
  afterAll(async () => {
    await server?.stop("SIGKILL");
  });

  test(`${TOTAL_TOKENS}+ tokens sampled at temperature 0.8 over successive seeds: at least ${MIN_RATE * 100}% of the words are in ${DICTIONARY}`, async () => {
    if (!existsSync(DICTIONARY)) throw new Error(`${DICTIONARY} is missing: apt-get install -y wamerican`);
    const dictionary = new Set(readFileSync(DICTIONARY, "utf8").split("\n").map((w) => w.trim().toLowerCase()).filter(Boolean));
    const manifest = JSON.parse(readFileSync(join(KJV_GPT_DIR, "model.json"), "utf8")) as { context_length: number; tokenizer: string };
    const tokenizer = new Tokenizer(JSON.parse(readFileSync(join(KJV_GPT_DIR, manifest.tokenizer), "utf8")), {});

    let texts: string[] = [];
    let completionTokens = 0;
    for (let seed = 1; seed <= MAX_SEEDS && completionTokens < TOTAL_TOKENS; seed++) {
      const prompt = PROMPTS[seed % PROMPTS.length]!;
      const maxTokens = Math.min(100, manifest.context_length - tokenizer.encode(prompt).ids.length);
      const res = await fetch(`${server.url}/v1/generate`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model: "kjv-gpt", prompt, max_tokens: maxTokens, temperature: 0.8, seed }),
      });
      const body = await res.text();
      expect({ status: res.status, body }).toMatchObject({ status: 200 });
      const result = JSON.parse(body) as { text: string; usage: { completion_tokens: number } };
      texts = [...texts, result.text];
      completionTokens += result.usage.completion_tokens;
    }

    const words = texts.join(" ").toLowerCase().match(/[a-z]+/g) ?? [];
    const known = words.filter((w) => dictionary.has(w));
    const rate = known.length / Math.max(1, words.length);
    const unknown = [...new Set(words.filter((w) => !dictionary.has(w)))];
    console.log(
      `kjv-gpt: ${completionTokens} tokens, ${words.length} words, ${(rate * 100).toFixed(1)}% in ${DICTIONARY}; not found: ${unknown.slice(0, 30).join(", ")}`,
    );
    expect(completionTokens).toBeGreaterThanOrEqual(TOTAL_TOKENS);
    expect(words.length).toBeGreaterThan(40);
    expect(rate).toBeGreaterThanOrEqual(MIN_RATE);
  }, 120_000);
});
