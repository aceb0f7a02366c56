/**
 * The official `openai` npm client against the real server (`npm start`) serving the tiny LM: completions and
 * chat completions, streamed and not, the model list, and the errors it raises as its usual exception classes,
 * with authentication off and on.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { startTextServer } from "../helpers/generation.ts";
import { keysFile } from "../helpers/keys.ts";
import { loadTokenizer } from "../helpers/text-model.ts";
import type { RunningServer } from "../helpers/server.ts";

// Bounds, not measurements: two shared cores may be busy with other work (the hooks start real servers).
const TIMEOUT = 30_000;
const HOOK_TIMEOUT = 60_000;

const PROMPT = "In the beginning God created";
const MESSAGES = [
  { role: "system" as const, content: "The King James Bible." },
  { role: "user" as const, content: "And God said" },
];

/** The same generation through the server's own route, to compare with. */
async function generate(server: RunningServer, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}/v1/generate`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return (await res.json()) as { text: string; finish_reason: string; usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } };
}

/** An OpenAI error of class `type` with this status, thrown by `call`. */
async function rejection<T extends new (...args: never[]) => InstanceType<typeof OpenAI.APIError>>(call: () => Promise<unknown>, type: T, status: number): Promise<InstanceType<T>> {
  let thrown: unknown;
  try {
    await call();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(type);
  expect((thrown as InstanceType<typeof OpenAI.APIError>).status).toBe(status);
  return thrown as InstanceType<T>;
}

describe("the openai client, authentication off", () => {
  let server: RunningServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTextServer({ MAX_TOKENS: "60" });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  }, HOOK_TIMEOUT);
  afterAll(async () => {
    await server?.stop("SIGKILL");
  }, HOOK_TIMEOUT);

  test("completions.create: a text_completion with id cmpl-…, the greedy text, finish_reason and usage", async () => {
    const completion = await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 20, temperature: 0 });
    const reference = await generate(server, { prompt: PROMPT, max_tokens: 20, temperature: 0 });
    expect(completion.id).toMatch(/^cmpl-[0-9a-f]{32}$/);
    expect(completion.object).toBe("text_completion");
    expect(completion.model).toBe("tiny-lm");
    expect(Number.isInteger(completion.created)).toBe(true);
    expect(completion.choices).toHaveLength(1);
    expect(completion.choices[0]).toEqual({ text: reference.text, index: 0, logprobs: null, finish_reason: "length" });
    expect(completion.usage).toEqual(reference.usage);
    expect(completion.usage!.completion_tokens).toBe(20);
  }, TIMEOUT);

  test("completions.create defaults to 16 tokens, as OpenAI's API does", async () => {
    const completion = await client.completions.create({ model: "tiny-lm", prompt: PROMPT, temperature: 0 });
    expect(completion.usage!.completion_tokens).toBe(16);
  }, TIMEOUT);

  test("completions.create with a stop sequence: the text ends before it, finish_reason stop", async () => {
    const full = await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 30, temperature: 0 });
    const text = full.choices[0]!.text;
    const stop = text.slice(text.indexOf(" ", 3), text.indexOf(" ", 3) + 4);
    const stopped = await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 30, temperature: 0, stop: [stop] });
    expect(stopped.choices[0]!.text).toBe(text.slice(0, text.indexOf(stop)));
    expect(stopped.choices[0]!.finish_reason).toBe("stop");
  }, TIMEOUT);

  test("completions.create with stream: the chunks' texts concatenate to the non-streamed greedy text", async () => {
    const whole = await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 25, temperature: 0 });
    const stream = await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 25, temperature: 0, stream: true });
    const chunks: OpenAI.Completions.Completion[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(2);
    const ids = new Set(chunks.map((c) => c.id));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toMatch(/^cmpl-/);
    for (const chunk of chunks) {
      expect(chunk.object).toBe("text_completion");
      expect(chunk.choices).toHaveLength(1);
      expect(chunk.usage).toBeUndefined();
    }
    expect(chunks.map((c) => c.choices[0]!.text).join("")).toBe(whole.choices[0]!.text);
    // Only the last chunk carries the finish reason.
    expect(chunks.map((c) => c.choices[0]!.finish_reason)).toEqual([...Array(chunks.length - 1).fill(null), "length"]);
  }, TIMEOUT);

  test("completions.create with stream_options.include_usage: the last chunk has the usage and no choices", async () => {
    const whole = await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 10, temperature: 0 });
    const stream = await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 10, temperature: 0, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.Completions.Completion[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(whole.usage);
    for (const chunk of chunks.slice(0, -1)) {
      expect(chunk.usage).toBeNull();
      expect(chunk.choices).toHaveLength(1);
    }
    expect(chunks.slice(0, -1).map((c) => c.choices[0]!.text).join("")).toBe(whole.choices[0]!.text);
  }, TIMEOUT);

  test("the same seed at temperature 1 gives the same completion, streamed or not", async () => {
    const params = { model: "tiny-lm", prompt: PROMPT, max_tokens: 20, temperature: 1, seed: 42 };
    const [a, b] = await Promise.all([client.completions.create(params), client.completions.create(params)]);
    expect(b.choices[0]!.text).toBe(a.choices[0]!.text);
    let streamed = "";
    for await (const chunk of await client.completions.create({ ...params, stream: true })) streamed += chunk.choices[0]?.text ?? "";
    expect(streamed).toBe(a.choices[0]!.text);
  }, TIMEOUT);

  test("chat.completions.create: a chat.completion whose message is the assistant's greedy continuation of the messages", async () => {
    const chat = await client.chat.completions.create({ model: "tiny-lm", messages: MESSAGES, max_tokens: 20, temperature: 0 });
    const reference = await generate(server, { prompt: MESSAGES.map((m) => m.content).join("\n"), max_tokens: 20, temperature: 0 });
    expect(chat.id).toMatch(/^chatcmpl-/);
    expect(chat.object).toBe("chat.completion");
    expect(chat.model).toBe("tiny-lm");
    expect(chat.choices).toHaveLength(1);
    expect(chat.choices[0]).toMatchObject({ index: 0, finish_reason: "length", message: { role: "assistant", content: reference.text } });
    expect(chat.usage).toEqual(reference.usage);
  }, TIMEOUT);

  test("chat.completions.create with stream: the first delta has role assistant; the deltas concatenate to the non-streamed reply", async () => {
    const whole = await client.chat.completions.create({ model: "tiny-lm", messages: MESSAGES, max_tokens: 20, temperature: 0 });
    const stream = await client.chat.completions.create({ model: "tiny-lm", messages: MESSAGES, max_tokens: 20, temperature: 0, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    for (const chunk of chunks) {
      expect(chunk.object).toBe("chat.completion.chunk");
      expect(chunk.id).toMatch(/^chatcmpl-/);
    }
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    for (const chunk of chunks.slice(1)) expect(chunk.choices[0]?.delta.role).toBeUndefined();
    const withChoices = chunks.filter((c) => c.choices.length > 0);
    expect(withChoices.map((c) => c.choices[0]!.delta.content ?? "").join("")).toBe(whole.choices[0]!.message.content!);
    expect(withChoices.at(-1)!.choices[0]!.finish_reason).toBe("length");
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage).toEqual(whole.usage);
  }, TIMEOUT);

  // OpenAI's default for chat is as many tokens as fit: here MAX_TOKENS (60) + the prompt would not fit the 64-token
  // context (nor would the default MAX_TOKENS 256 fit kjv-gpt's 256), yet the request succeeds.
  test("chat.completions.create without max_tokens generates up to the context length", async () => {
    const chat = await client.chat.completions.create({ model: "tiny-lm", messages: MESSAGES, temperature: 0 });
    expect(chat.choices[0]!.finish_reason).toBe("length");
    expect(chat.usage!.total_tokens).toBe(64);
  }, TIMEOUT);

  test("models.list includes tiny-lm (with its task); models.retrieve('tiny-lm') gives it", async () => {
    const models: (OpenAI.Models.Model & { task?: string })[] = [];
    for await (const model of client.models.list()) models.push(model);
    expect(models.map((m) => m.id).sort()).toEqual(["iris", "tiny-lm"]);
    const tiny = models.find((m) => m.id === "tiny-lm")!;
    expect(tiny).toMatchObject({ object: "model", owned_by: "onnx-serve", task: "text-generation", version: "1.0.0" });
    expect(Number.isInteger(tiny.created)).toBe(true);
    expect(models.find((m) => m.id === "iris")).toMatchObject({ task: "tabular-classification" });
    expect(await client.models.retrieve("tiny-lm")).toEqual(tiny);
  }, TIMEOUT);

  test("an unknown model → NotFoundError (404, code model_not_found), from completions, chat and models.retrieve", async () => {
    for (const call of [
      () => client.completions.create({ model: "no-such-model", prompt: PROMPT, max_tokens: 5 }),
      () => client.completions.create({ model: "no-such-model", prompt: PROMPT, max_tokens: 5, stream: true }),
      () => client.chat.completions.create({ model: "no-such-model", messages: MESSAGES, max_tokens: 5 }),
      () => client.models.retrieve("no-such-model"),
    ]) {
      const error = await rejection(call, OpenAI.NotFoundError, 404);
      expect(error.code).toBe("model_not_found");
      expect(error.type).toBe("invalid_request_error");
    }
  }, TIMEOUT);

  test("a bad parameter → BadRequestError (400) naming it", async () => {
    const temperature = await rejection(() => client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 5, temperature: 5 }), OpenAI.BadRequestError, 400);
    expect(temperature.param).toBe("temperature");
    const maxTokens = await rejection(() => client.chat.completions.create({ model: "tiny-lm", messages: MESSAGES, max_tokens: 61 }), OpenAI.BadRequestError, 400);
    expect(maxTokens.param).toBe("max_tokens");
    await rejection(() => client.completions.create({ model: "iris", prompt: PROMPT, max_tokens: 5 }), OpenAI.BadRequestError, 400);
  }, TIMEOUT);

  test("parameters this model cannot honour → BadRequestError naming each: tools, response_format json, best_of, suffix, image parts", async () => {
    const tool = { type: "function" as const, function: { name: "lookup", parameters: { type: "object", properties: {} } } };
    const refusals: [string, () => Promise<unknown>][] = [
      ["tools", () => client.chat.completions.create({ model: "tiny-lm", messages: MESSAGES, tools: [tool] })],
      ["response_format", () => client.chat.completions.create({ model: "tiny-lm", messages: MESSAGES, response_format: { type: "json_object" } })],
      ["best_of", () => client.completions.create({ model: "tiny-lm", prompt: PROMPT, best_of: 3 })],
      ["suffix", () => client.completions.create({ model: "tiny-lm", prompt: PROMPT, suffix: " the end" })],
      [
        "messages.0.content.1",
        () =>
          client.chat.completions.create({
            model: "tiny-lm",
            messages: [{ role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }] }],
          }),
      ],
    ];
    for (const [param, call] of refusals) expect((await rejection(call, OpenAI.BadRequestError, 400)).param).toBe(param);
  }, TIMEOUT);

  test("logprobs: completions' parallel lists (echo puts the prompt's tokens first), chat's content[]; the greedy token is the most likely", async () => {
    const completion = await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 6, temperature: 0, logprobs: 3, echo: true });
    const choice = completion.choices[0]!;
    expect(choice.text.startsWith(PROMPT)).toBe(true);
    const lists = choice.logprobs!;
    const promptTokens = completion.usage!.prompt_tokens;
    expect(lists.tokens).toHaveLength(promptTokens + 6);
    expect(lists.tokens!.join("")).toBe(choice.text);
    expect(lists.token_logprobs![0]).toBeNull();
    expect(lists.top_logprobs![0]).toBeNull();
    expect(lists.text_offset![promptTokens]).toBe(PROMPT.length);
    for (let i = promptTokens; i < lists.tokens!.length; i++) {
      const top = Object.entries(lists.top_logprobs![i]!);
      expect(top).toHaveLength(3);
      // Greedy: the token chosen is the most likely one, with its log-probability.
      expect(top[0]).toEqual([lists.tokens![i]!, lists.token_logprobs![i]!]);
      expect(lists.token_logprobs![i]!).toBeLessThanOrEqual(0);
    }

    const chat = await client.chat.completions.create({ model: "tiny-lm", messages: MESSAGES, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 2 });
    const content = chat.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(5);
    expect(content.map((t) => t.token).join("")).toBe(chat.choices[0]!.message.content ?? "");
    for (const t of content) {
      expect(t.top_logprobs).toHaveLength(2);
      expect(t.top_logprobs[0]).toEqual({ token: t.token, logprob: t.logprob, bytes: t.bytes });
      expect(Buffer.from(t.bytes!).toString("utf8")).toBe(t.token);
    }
  }, TIMEOUT);

  test("n choices: each its own stream (seed + i), streamed or not; usage counts the prompt once", async () => {
    const completion = await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 8, temperature: 1, seed: 5, n: 3 });
    expect(completion.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    // Choice i is what a single request seeded seed + i gives.
    let completionTokens = 0;
    for (const [i, c] of completion.choices.entries()) {
      const alone = await generate(server, { prompt: PROMPT, max_tokens: 8, temperature: 1, seed: 5 + i });
      expect(c.text).toBe(alone.text);
      completionTokens += alone.usage.completion_tokens;
    }
    expect(completion.usage!.completion_tokens).toBe(completionTokens);
    expect(completion.usage!.prompt_tokens).toBe((await generate(server, { prompt: PROMPT, max_tokens: 1 })).usage.prompt_tokens);

    const stream = await client.chat.completions.create({ model: "tiny-lm", messages: MESSAGES, max_tokens: 8, temperature: 1, seed: 5, n: 2, stream: true });
    const texts = ["", ""];
    for await (const chunk of stream) for (const c of chunk.choices) texts[c.index] += c.delta.content ?? "";
    const whole = await client.chat.completions.create({ model: "tiny-lm", messages: MESSAGES, max_tokens: 8, temperature: 1, seed: 5, n: 2 });
    expect(texts).toEqual(whole.choices.map((c) => c.message.content ?? ""));
  }, TIMEOUT);

  test("penalties, logit_bias and vLLM's min_tokens and ignore_eos are honoured (the bias changes the greedy text)", async () => {
    const plain = await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 8, temperature: 0, logprobs: 0 });
    const first = plain.choices[0]!.logprobs!.tokens![0]!;
    // Ban the greedy first token through logit_bias: the completion must start otherwise.
    const banned = await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 8, temperature: 0, logit_bias: { [tokenId(first)]: -100 }, logprobs: 0 });
    expect(banned.choices[0]!.logprobs!.tokens![0]).not.toBe(first);
    const penalized = await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 30, temperature: 0, frequency_penalty: 2, presence_penalty: 2 });
    expect(penalized.usage!.completion_tokens).toBeGreaterThan(0);
    // Extensions as vLLM takes them: extra body fields.
    const long = await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 20, temperature: 0, ignore_eos: true, min_tokens: 20 } as never);
    expect(long.usage!.completion_tokens).toBe(20);
  }, TIMEOUT);
});

/** A token's id in the tiny model's tokenizer.json. */
function tokenId(token: string): number {
  const id = loadTokenizer().token_to_id(token.replace(/^ /, "Ġ")); // byte-level BPE writes a leading space as Ġ
  if (id === undefined) throw new Error(`no token ${JSON.stringify(token)} in the vocabulary`);
  return id;
}

describe("the openai client, authentication on (API_KEYS_FILE)", () => {
  let server: RunningServer;
  let keys: Record<string, string>;
  const clientWith = (apiKey: string) => new OpenAI({ baseURL: `${server.url}/v1`, apiKey, maxRetries: 0 });

  beforeAll(async () => {
    const written = keysFile([
      { name: "writer", scopes: ["generate"] },
      { name: "classifier", scopes: ["predict"] },
      { name: "limited", scopes: ["generate"], rateLimit: { capacity: 1, refillPerSecond: 0.001 } },
    ]);
    keys = written.secret;
    server = await startTextServer({ API_KEYS_FILE: written.path, MAX_TOKENS: "60" });
  }, HOOK_TIMEOUT);
  afterAll(async () => {
    await server?.stop("SIGKILL");
  }, HOOK_TIMEOUT);

  test("a key with the generate scope works: completions, streamed completions, chat", async () => {
    const client = clientWith(keys.writer!);
    const completion = await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 12, temperature: 0 });
    const reference = await generate(server, { prompt: PROMPT, max_tokens: 12, temperature: 0 }, { "X-API-Key": keys.writer! });
    expect(completion.choices[0]!.text).toBe(reference.text);
    let streamed = "";
    for await (const chunk of await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 12, temperature: 0, stream: true })) streamed += chunk.choices[0]?.text ?? "";
    expect(streamed).toBe(reference.text);
    const chat = await client.chat.completions.create({ model: "tiny-lm", messages: MESSAGES, max_tokens: 5, temperature: 0 });
    expect(chat.choices[0]!.message.role).toBe("assistant");
    // The model list is public: any key (or a wrong one) may read it.
    expect((await clientWith("osk_wrong").models.retrieve("tiny-lm")).id).toBe("tiny-lm");
  }, TIMEOUT);

  test("a wrong key → AuthenticationError (401, code invalid_api_key, as OpenAI's)", async () => {
    const client = clientWith("osk_not-a-key-this-server-knows");
    const error = await rejection(() => client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 5 }), OpenAI.AuthenticationError, 401);
    expect(error.type).toBe("authentication_error");
    expect(error.code).toBe("invalid_api_key");
    await rejection(() => client.chat.completions.create({ model: "tiny-lm", messages: MESSAGES, max_tokens: 5, stream: true }), OpenAI.AuthenticationError, 401);
  }, TIMEOUT);

  test("a key without the generate scope → PermissionDeniedError (403)", async () => {
    const error = await rejection(() => clientWith(keys.classifier!).completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 5 }), OpenAI.PermissionDeniedError, 403);
    expect(error.type).toBe("permission_error");
    expect(error.message).toContain("generate");
  }, TIMEOUT);

  test("a key over its rate limit (capacity 1) → RateLimitError (429) with Retry-After", async () => {
    const client = clientWith(keys.limited!);
    await client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 3, temperature: 0 });
    const error = await rejection(() => client.completions.create({ model: "tiny-lm", prompt: PROMPT, max_tokens: 3 }), OpenAI.RateLimitError, 429);
    expect(error.type).toBe("rate_limit_error");
    expect(Number(error.headers?.get("retry-after"))).toBeGreaterThan(0);
  }, TIMEOUT);
});
