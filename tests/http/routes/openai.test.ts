/**
 * The OpenAI-compatible routes at the edge, over a fake text model that records each generation's parameters:
 * the parameters a completion model honours (n, echo, logprobs, penalties...) reach the engine and come back in
 * OpenAI's shapes; the ones it cannot honour are refused by name, never silently ignored.
 */
import { beforeEach, describe, expect, test } from "bun:test";
import { testApp } from "../../helpers/app.ts";
import { FakeRepository, realManifest, tinyLmManifest } from "../../helpers/fake-repository.ts";
import { expectOpenAIError, postJson } from "../../helpers/http.ts";

const { app, repository } = testApp({ catalog: new FakeRepository([realManifest("iris"), tinyLmManifest()]), env: { MAX_TOKENS: "50" } });
const model = repository.textModel("tiny-lm");
beforeEach(() => model.reset());

const completion = (body: Record<string, unknown>) => postJson(app, "/v1/completions", { model: "tiny-lm", prompt: "In the beginning", ...body });
const chat = (body: Record<string, unknown>) => postJson(app, "/v1/chat/completions", { model: "tiny-lm", messages: [{ role: "user", content: "In the beginning" }], ...body });

/** The `data:` payloads of an SSE body, parsed (except `[DONE]`, kept as text). */
async function chunks(res: Response): Promise<unknown[]> {
  const text = await res.text();
  expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
  return text
    .split("\n\n")
    .filter(Boolean)
    .map((block) => {
      expect(block).toStartWith("data: ");
      const data = block.slice("data: ".length);
      return data === "[DONE]" ? data : JSON.parse(data);
    });
}

describe("parameters a completion model cannot honour are refused by name: 400 in OpenAI's shape, param set", () => {
  test.each([
    ["completions", "suffix", { suffix: " and the earth" }],
    ["completions", "best_of", { best_of: 2 }],
    ["completions", "logprobs", { logprobs: 6 }],
    ["completions", "n", { n: 5 }],
    ["chat", "tools", { tools: [{ type: "function", function: { name: "f", parameters: {} } }] }],
    ["chat", "tool_choice", { tool_choice: "auto" }],
    ["chat", "functions", { functions: [{ name: "f", parameters: {} }] }],
    ["chat", "function_call", { function_call: "auto" }],
    ["chat", "response_format", { response_format: { type: "json_object" } }],
    ["chat", "response_format", { response_format: { type: "json_schema", json_schema: { name: "x", schema: {} } } }],
    ["chat", "audio", { audio: { voice: "alloy", format: "wav" } }],
    ["chat", "modalities", { modalities: ["text", "audio"] }],
    ["chat", "top_logprobs", { top_logprobs: 2 }],
    ["chat", "messages.0.content.1", { messages: [{ role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image_url", image_url: { url: "https://example.com/a.png" } }] }] }],
    ["chat", "messages.0.content.0", { messages: [{ role: "user", content: [{ type: "input_audio", input_audio: { data: "", format: "wav" } }] }] }],
  ])("%s: %s", async (route, param, body) => {
    const res = await (route === "chat" ? chat(body) : completion(body));
    const error = await expectOpenAIError(res, 400, "invalid_request_error");
    expect(error.param).toBe(param);
    expect(error.code).toBe("validation_error");
    expect(error.message).toStartWith(`${param}: `);
    expect(model.calls).toEqual([]);
  });

  test("their harmless forms are accepted: no tools, text responses, best_of 1, an empty suffix", async () => {
    expect((await chat({ tools: null, tool_choice: null, response_format: { type: "text" }, modalities: ["text"] })).status).toBe(200);
    expect((await chat({ tools: [] })).status).toBe(200);
    expect((await completion({ best_of: 1, suffix: null })).status).toBe(200);
  });
});

describe("defaults and parameters", () => {
  test("completions: 16 tokens (or as many as fit), temperature 1; chat: as many as fit, up to MAX_TOKENS", async () => {
    await completion({});
    expect(model.calls[0]).toMatchObject({ maxTokens: 16, fitToContext: true, temperature: 1, topP: 1, topK: 0 });
    await chat({});
    expect(model.calls[1]).toMatchObject({ maxTokens: 50, fitToContext: true, temperature: 1 });
  });

  test("max_completion_tokens wins over max_tokens; a max_tokens over the server's cap is refused saying the cap", async () => {
    await chat({ max_tokens: 5, max_completion_tokens: 3 });
    expect(model.calls[0]).toMatchObject({ maxTokens: 3, fitToContext: false });
    const error = await expectOpenAIError(await completion({ max_tokens: 51 }), 400, "invalid_request_error");
    expect(error).toMatchObject({ param: "max_tokens", message: "max_tokens: must be at most 50" });
  });

  test("penalties, logit_bias, min_tokens and ignore_eos reach the engine", async () => {
    await completion({ presence_penalty: 1, frequency_penalty: 0.5, logit_bias: { "50256": -100 }, min_tokens: 3, ignore_eos: true, seed: 9 });
    expect(model.calls[0]).toMatchObject({ presencePenalty: 1, frequencyPenalty: 0.5, logitBias: new Map([[50256, -100]]), minTokens: 3, ignoreEos: true, seed: 9 });
  });
});

describe("n choices", () => {
  test("each choice is its own generation (choice i seeded seed + i); the prompt is counted once in usage", async () => {
    const res = await completion({ n: 3, max_tokens: 2, seed: 40 });
    expect(model.calls.map((c) => c.seed)).toEqual([40, 41, 42]);
    const body = (await res.json()) as { choices: { index: number; text: string; finish_reason: string }[]; usage: unknown };
    expect(body.choices).toEqual([0, 1, 2].map((index) => ({ index, text: " w0 w1", logprobs: null, finish_reason: "length" })));
    expect(body.usage).toEqual({ prompt_tokens: 3, completion_tokens: 6, total_tokens: 9 });
  });

  test("streamed: every choice opens with the assistant's role, its chunks carry its index, and usage comes last", async () => {
    const all = await chunks(await chat({ n: 2, max_tokens: 2, stream: true, stream_options: { include_usage: true } }));
    expect(all.at(-1)).toBe("[DONE]");
    const objects = all.slice(0, -1) as { choices: { index: number; delta: Record<string, string>; finish_reason: string | null }[]; usage: unknown }[];
    expect(objects.slice(0, 2).map((c) => c.choices[0])).toEqual([0, 1].map((index) => ({ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null })));
    for (const index of [0, 1]) {
      const mine = objects.flatMap((c) => c.choices.filter((ch) => ch.index === index));
      expect(mine.map((ch) => ch.delta.content ?? "").join("")).toBe(" w0 w1");
      expect(mine.at(-1)).toMatchObject({ delta: {}, finish_reason: "length" });
    }
    expect(objects.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(objects.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } });
  });
});

describe("echo and log-probabilities", () => {
  test("completions with echo: the prompt leads the text; with logprobs, the prompt's tokens lead the lists (the first with null)", async () => {
    const plain = (await (await completion({ echo: true, max_tokens: 1 })).json()) as { choices: { text: string; logprobs: unknown }[] };
    expect(plain.choices[0]).toMatchObject({ text: "In the beginning w0", logprobs: null });

    const res = await completion({ echo: true, max_tokens: 2, logprobs: 1 });
    expect(model.calls.at(-1)).toMatchObject({ logprobs: 1, promptLogprobs: true });
    const body = (await res.json()) as { choices: { text: string; logprobs: unknown }[] };
    expect(body.choices[0]!.text).toBe("In the beginning w0 w1");
    expect(body.choices[0]!.logprobs).toEqual({
      tokens: ["In", " the", " beginning", " w0", " w1"],
      token_logprobs: [null, -0.5, -0.5, -0.5, -0.5],
      top_logprobs: [null, { " the": -0.5 }, { " beginning": -0.5 }, { " w0": -0.5 }, { " w1": -0.5 }],
      text_offset: [0, 2, 6, 16, 19],
    });
  });

  test("completions streamed with logprobs: each chunk carries its tokens, offsets counting on from the text so far", async () => {
    const all = (await chunks(await completion({ max_tokens: 2, logprobs: 0, stream: true }))).slice(0, -1) as { choices: { text: string; logprobs: unknown }[] }[];
    expect(all.map((c) => c.choices[0]!.logprobs)).toEqual([
      { tokens: [" w0"], token_logprobs: [-0.5], top_logprobs: [{}], text_offset: [0] },
      { tokens: [" w1"], token_logprobs: [-0.5], top_logprobs: [{}], text_offset: [3] },
      null,
    ]);
  });

  test("chat: logprobs true with top_logprobs, in OpenAI's content[] shape", async () => {
    const res = await chat({ max_tokens: 1, logprobs: true, top_logprobs: 2 });
    expect(model.calls.at(-1)!.logprobs).toBe(2);
    const body = (await res.json()) as { choices: { logprobs: unknown }[] };
    expect(body.choices[0]!.logprobs).toEqual({
      content: [
        {
          token: " w0",
          logprob: -0.5,
          bytes: [32, 119, 48],
          top_logprobs: [
            { token: " w0", logprob: -0.5, bytes: [32, 119, 48] },
            { token: "alt1", logprob: -2, bytes: [97, 108, 116, 49] },
          ],
        },
      ],
    });
    expect(((await (await chat({ max_tokens: 1 })).json()) as { choices: { logprobs: unknown }[] }).choices[0]!.logprobs).toBeNull();
  });
});

describe("GET /v1/models/{model}", () => {
  test("a text model shows its context_length; a tabular one does not", async () => {
    const text = (await (await app.request("/v1/models/tiny-lm")).json()) as Record<string, unknown>;
    expect(text).toMatchObject({ id: "tiny-lm", object: "model", task: "text-generation", context_length: 64, created: expect.any(Number) });
    const tabular = (await (await app.request("/v1/models/iris")).json()) as Record<string, unknown>;
    expect(tabular).not.toHaveProperty("context_length");
  });
});
