/**
 * /v1/generate as clients see it over HTTP, against the real server (`npm start`) serving the tiny LM fixture:
 * SSE framing byte for byte, POST stream vs GET, the JSON result, seeds, stop sequences, and the limits answered
 * as problem+json (and in OpenAI's error shape on the OpenAI routes). The engine itself is tested in tests/text/.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { expectOpenAIError, expectProblem, type OpenAIErrorBody } from "../helpers/http.ts";
import { parseGenerateStream, startTextServer, TINY_LM_DIR, type ParsedStream, type Usage } from "../helpers/generation.ts";
import type { RunningServer } from "../helpers/server.ts";

// Bounds, not measurements: two shared cores may be busy with other work (the hooks start real servers).
const TIMEOUT = 30_000;
const HOOK_TIMEOUT = 60_000;

const MAX_TOKENS = 60; // the server's cap in this file
const CONTEXT = 64; // tiny-lm's context_length
const PROMPT = "In the beginning God created";

let server: RunningServer;
let tokenizer: Tokenizer;

beforeAll(async () => {
  server = await startTextServer({ MAX_TOKENS: String(MAX_TOKENS) });
  tokenizer = new Tokenizer(JSON.parse(readFileSync(join(TINY_LM_DIR, "tokenizer.json"), "utf8")), {});
}, HOOK_TIMEOUT);
afterAll(async () => {
  await server?.stop("SIGKILL");
}, HOOK_TIMEOUT);

type Params = { prompt: string; max_tokens?: number; temperature?: number; top_p?: number; top_k?: number; seed?: number; model?: string; stop?: string };
type GenerationResult = { model: string; text: string; finish_reason: "stop" | "length"; usage: Usage };

const query = (p: Params) => new URLSearchParams(Object.entries(p).map(([k, v]): [string, string] => [k, String(v)])).toString();
const getStream = (p: Params) => fetch(`${server.url}/v1/generate?${query(p)}`);
const post = (body: unknown) => fetch(`${server.url}/v1/generate`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

async function streamOf(res: Response): Promise<{ body: string; parsed: ParsedStream }> {
  const body = await res.text();
  expect({ status: res.status, body }).toMatchObject({ status: 200 });
  expect(res.headers.get("content-type")).toBe("text/event-stream");
  return { body, parsed: parseGenerateStream(body) };
}

async function resultOf(body: unknown): Promise<GenerationResult> {
  const res = await post(body);
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status: 200 });
  expect(res.headers.get("content-type")).toStartWith("application/json");
  const json = JSON.parse(text) as GenerationResult;
  expect(Object.keys(json)).toEqual(["model", "text", "finish_reason", "usage"]);
  expect(Object.keys(json.usage)).toEqual(["prompt_tokens", "completion_tokens", "total_tokens"]);
  return json;
}

const promptTokens = (prompt: string) => tokenizer.encode(prompt).ids.length;

describe("SSE framing of GET /v1/generate", () => {
  test("greedy, max_tokens 5: text/event-stream, no-cache, exactly five token events then one done event, nothing else", async () => {
    const res = await getStream({ prompt: PROMPT, max_tokens: 5, temperature: 0 });
    expect(res.headers.get("cache-control")).toBe("no-cache");
    const { body, parsed } = await streamOf(res);
    const P = promptTokens(PROMPT);
    // The tiny LM's greedy continuation is plain ASCII: one piece of text per token, indices 0..4.
    expect(parsed.tokens.map((t) => t.index)).toEqual([0, 1, 2, 3, 4]);
    expect(parsed.done).toEqual({ finish_reason: "length", usage: { prompt_tokens: P, completion_tokens: 5, total_tokens: P + 5 } });
    // The whole body, byte for byte, as the documented framing builds it.
    const expected =
      parsed.tokens.map((t) => `event: token\ndata: {"text":${JSON.stringify(t.text)},"index":${t.index}}\n\n`).join("") +
      `event: done\ndata: {"finish_reason":"length","usage":{"prompt_tokens":${P},"completion_tokens":5,"total_tokens":${P + 5}}}\n\n`;
    expect(body).toBe(expected);
  }, TIMEOUT);

  test("the token texts concatenate to the non-streamed text of the same greedy request", async () => {
    const { parsed } = await streamOf(await getStream({ prompt: PROMPT, max_tokens: 20, temperature: 0 }));
    const json = await resultOf({ prompt: PROMPT, max_tokens: 20, temperature: 0 });
    expect(parsed.text).toBe(json.text);
    expect(parsed.text).not.toBe("");
    expect(parsed.done).toEqual({ finish_reason: json.finish_reason, usage: json.usage });
  }, TIMEOUT);

  test("the token texts concatenate to the non-streamed text for the same seed at temperature 1", async () => {
    const params = { prompt: "And God said", max_tokens: 30, temperature: 1, top_p: 1, top_k: 0, seed: 1234 };
    const { parsed } = await streamOf(await getStream(params));
    const json = await resultOf(params);
    expect(parsed.text).toBe(json.text);
    expect(parsed.done.usage).toEqual(json.usage);
  }, TIMEOUT);

  test("POST with stream: true sends the very same bytes as GET for the same parameters", async () => {
    for (const params of [
      { prompt: PROMPT, max_tokens: 12, temperature: 0 },
      { prompt: "Jesus wept", max_tokens: 25, temperature: 0.9, top_p: 0.95, top_k: 40, seed: 99 },
    ]) {
      const [get, postStream] = await Promise.all([getStream(params).then(streamOf), post({ ...params, stream: true }).then(streamOf)]);
      expect(postStream.body).toBe(get.body);
    }
  }, TIMEOUT);

  test("POST without stream answers one JSON object {model, text, finish_reason, usage}", async () => {
    const json = await resultOf({ prompt: PROMPT, max_tokens: 7, temperature: 0 });
    const P = promptTokens(PROMPT);
    expect(json).toEqual({ model: "tiny-lm", text: expect.any(String), finish_reason: "length", usage: { prompt_tokens: P, completion_tokens: 7, total_tokens: P + 7 } });
    expect(json.text.length).toBeGreaterThan(0);
    // stream: false is the same as leaving it out
    expect(await resultOf({ prompt: PROMPT, max_tokens: 7, temperature: 0, stream: false })).toEqual(json);
  }, TIMEOUT);
});

describe("seeds", () => {
  const sampled = (seed: number) => ({ prompt: "And it came to pass", max_tokens: 24, temperature: 1, seed });

  test("the same seed gives the same text, streamed or not, also when requests run at once", async () => {
    const [a, b, c] = await Promise.all([resultOf(sampled(7)), resultOf(sampled(7)), getStream(sampled(7)).then(streamOf)]);
    expect(b).toEqual(a);
    expect(c.parsed.text).toBe(a.text);
  }, TIMEOUT);

  test("different seeds give different texts at temperature 1", async () => {
    const seeds = [1, 2, 3, 4, 5];
    const texts = (await Promise.all(seeds.map((s) => resultOf(sampled(s))))).map((r) => r.text);
    expect(new Set(texts).size).toBe(seeds.length);
  }, TIMEOUT);

  test("greedy decoding (temperature 0) is deterministic without a seed", async () => {
    const greedy = { prompt: "The LORD is my shepherd", max_tokens: 30, temperature: 0 };
    const results = await Promise.all([resultOf(greedy), resultOf(greedy), resultOf({ ...greedy, seed: 5 }), getStream(greedy).then(streamOf)]);
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    expect(results[3].parsed.text).toBe(results[0].text);
  }, TIMEOUT);
});

describe("stop sequences", () => {
  test("a stop string taken from the middle of the greedy continuation ends the text right before it, finish_reason stop", async () => {
    const greedy = { prompt: PROMPT, max_tokens: 40, temperature: 0 };
    const full = await resultOf(greedy);
    expect(full.text.length).toBeGreaterThan(20);
    // From the middle on, the first 5-character window that does not also start the text (so the answer is not empty).
    const middle = Math.floor(full.text.length / 2);
    let stop = "";
    for (let at = middle; at + 5 <= full.text.length && !stop; at++) {
      const candidate = full.text.slice(at, at + 5);
      if (full.text.indexOf(candidate) > 0) stop = candidate;
    }
    expect(stop).not.toBe("");
    const expected = full.text.slice(0, full.text.indexOf(stop));

    const stopped = await resultOf({ ...greedy, stop: [stop] });
    expect(stopped.text).toBe(expected);
    expect(stopped.finish_reason).toBe("stop");
    expect(stopped.usage.completion_tokens).toBeLessThan(40);
    // a single string works as well as a list
    expect(await resultOf({ ...greedy, stop })).toEqual(stopped);

    // streamed, GET (stop in the query) and POST: the same text, and the stop string is never sent
    const get = await streamOf(await getStream({ ...greedy, stop }));
    expect(get.parsed.text).toBe(expected);
    expect(get.parsed.done).toEqual({ finish_reason: "stop", usage: stopped.usage });
    expect(get.body).not.toContain(JSON.stringify(stop).slice(1, -1));
    const postStream = await streamOf(await post({ ...greedy, stop: [stop], stream: true }));
    expect(postStream.body).toBe(get.body);
  }, TIMEOUT);

  test("a stop string that never appears changes nothing", async () => {
    const greedy = { prompt: PROMPT, max_tokens: 20, temperature: 0 };
    expect(await resultOf({ ...greedy, stop: ["zzzz"] })).toEqual(await resultOf(greedy));
  }, TIMEOUT);
});

describe("limits answered as problem+json (4xx)", () => {
  // Over the context in tokens, while well under MAX_PROMPT_CHARS.
  const LONG_PROMPT = "And the LORD spake unto Moses, saying, ".repeat(20);

  test("the long prompt really is over the context length but within the character limit", () => {
    expect(promptTokens(LONG_PROMPT)).toBeGreaterThan(CONTEXT);
    expect(LONG_PROMPT.length).toBeLessThan(8192);
  }, TIMEOUT);

  const cases: { name: string; params: Params & Record<string, unknown>; status: number; type: string; field?: string }[] = [
    { name: "a prompt longer than the context", params: { prompt: LONG_PROMPT, max_tokens: 5 }, status: 422, type: "/problems/invalid-input" },
    { name: "prompt + max_tokens over the context", params: { prompt: PROMPT, max_tokens: MAX_TOKENS }, status: 422, type: "/problems/invalid-input" },
    { name: "max_tokens over MAX_TOKENS", params: { prompt: PROMPT, max_tokens: MAX_TOKENS + 1 }, status: 422, type: "/problems/validation-error", field: "max_tokens" },
    { name: "max_tokens 0", params: { prompt: PROMPT, max_tokens: 0 }, status: 422, type: "/problems/validation-error", field: "max_tokens" },
    { name: "an empty prompt", params: { prompt: "", max_tokens: 5 }, status: 422, type: "/problems/validation-error", field: "prompt" },
    { name: "temperature -1", params: { prompt: PROMPT, max_tokens: 5, temperature: -1 }, status: 422, type: "/problems/validation-error", field: "temperature" },
    { name: "top_p 0", params: { prompt: PROMPT, max_tokens: 5, top_p: 0 }, status: 422, type: "/problems/validation-error", field: "top_p" },
    { name: "an unknown model", params: { prompt: PROMPT, max_tokens: 5, model: "no-such-model" }, status: 404, type: "/problems/model-not-found" },
    { name: "a tabular model named as the text model", params: { prompt: PROMPT, max_tokens: 5, model: "iris" }, status: 422, type: "/problems/wrong-task" },
  ];

  for (const c of cases) {
    test(`${c.name} → ${c.status} ${c.type}, on GET and POST (streamed or not)`, async () => {
      const responses: [string, Response][] = [
        ["GET", await getStream(c.params)],
        ["POST", await post(c.params)],
        ["POST stream", await post({ ...c.params, stream: true })],
      ];
      for (const [how, res] of responses) {
        const problem = await expectProblem(res, c.status, "/v1/generate");
        expect({ how, type: problem.type }).toEqual({ how, type: c.type });
        if (c.field) expect(problem.errors?.map((e) => e.path)).toEqual([how === "GET" ? `query.${c.field}` : c.field]);
      }
    }, TIMEOUT);
  }

  test("the context-length problems say how long the prompt is and what fits", async () => {
    const long = await expectProblem(await post({ prompt: LONG_PROMPT, max_tokens: 5 }), 422, "/v1/generate");
    expect(long.detail).toBe(`the prompt is ${promptTokens(LONG_PROMPT)} tokens and the model's context is ${CONTEXT} tokens, which leaves no room to generate`);
    const P = promptTokens(PROMPT);
    const over = await expectProblem(await post({ prompt: PROMPT, max_tokens: MAX_TOKENS }), 422, "/v1/generate");
    expect(over.detail).toBe(`the prompt is ${P} tokens and the model's context is ${CONTEXT} tokens, so at most ${CONTEXT - P} tokens can be generated; ${MAX_TOKENS} were asked for`);
    // ... and that max_tokens does fit
    expect((await resultOf({ prompt: PROMPT, max_tokens: CONTEXT - P, temperature: 0 })).usage.completion_tokens).toBe(CONTEXT - P);
  }, TIMEOUT);
});

describe("limits on the OpenAI routes, in OpenAI's error shape", () => {
  const LONG_PROMPT = "And the LORD spake unto Moses, saying, ".repeat(20);
  async function openAIError(path: string, body: unknown, status: number): Promise<OpenAIErrorBody["error"]> {
    const res = await fetch(`${server.url}${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    return expectOpenAIError(res, status, "invalid_request_error");
  }

  const completion = (extra: Record<string, unknown>) => ({ model: "tiny-lm", prompt: PROMPT, max_tokens: 5, ...extra });
  const chat = (extra: Record<string, unknown>) => ({ model: "tiny-lm", messages: [{ role: "user", content: PROMPT }], max_tokens: 5, ...extra });

  for (const [path, body] of [
    ["/v1/completions", completion],
    ["/v1/chat/completions", chat],
  ] as const) {
    test(`${path}: context, max_tokens, temperature, top_p → 400 invalid_request_error; unknown model → 404 model_not_found; iris → 400 wrong_task`, async () => {
      const longBody = path === "/v1/completions" ? completion({ prompt: LONG_PROMPT }) : chat({ messages: [{ role: "user", content: LONG_PROMPT }] });
      expect(await openAIError(path, longBody, 400)).toMatchObject({ type: "invalid_request_error", code: "invalid_input" });
      expect(await openAIError(path, body({ max_tokens: MAX_TOKENS + 1 }), 400)).toMatchObject({ type: "invalid_request_error", param: "max_tokens", code: "validation_error" });
      expect(await openAIError(path, body({ temperature: -1 }), 400)).toMatchObject({ type: "invalid_request_error", param: "temperature" });
      expect(await openAIError(path, body({ top_p: 0 }), 400)).toMatchObject({ type: "invalid_request_error", param: "top_p" });
      expect(await openAIError(path, body({ model: "no-such-model" }), 404)).toEqual({
        message: expect.stringContaining("no-such-model"),
        type: "invalid_request_error",
        param: "model",
        code: "model_not_found",
      });
      expect(await openAIError(path, body({ model: "iris" }), 400)).toMatchObject({ type: "invalid_request_error", code: "wrong_task" });
    }, TIMEOUT);
  }

  test("/v1/completions: an empty prompt → 400", async () => {
    expect(await openAIError("/v1/completions", completion({ prompt: "" }), 400)).toMatchObject({ type: "invalid_request_error", param: "prompt" });
  }, TIMEOUT);

  test("GET /v1/models/no-such-model → 404 model_not_found", async () => {
    const res = await fetch(`${server.url}/v1/models/no-such-model`);
    expect(await expectOpenAIError(res, 404, "invalid_request_error")).toMatchObject({ code: "model_not_found" });
  }, TIMEOUT);
});
