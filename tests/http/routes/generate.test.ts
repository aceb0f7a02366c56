/**
 * /v1/generate's parameters, at the edge: strict parsing of the query string EventSource sends, the defaults, and
 * what reaches the engine (a fake text model that records each generation's parameters).
 */
import { beforeEach, describe, expect, test } from "bun:test";
import { testApp } from "../../helpers/app.ts";
import { FakeRepository, realManifest, tinyLmManifest } from "../../helpers/fake-repository.ts";
import { expectProblem, postJson } from "../../helpers/http.ts";

const { app, repository } = testApp({ catalog: new FakeRepository([realManifest("iris"), tinyLmManifest()]), env: { MAX_TOKENS: "50" } });
const model = repository.textModel("tiny-lm");
beforeEach(() => model.reset());

const get = (query: string) => app.request(`/v1/generate?${query}`);
const lastCall = () => model.calls.at(-1)!;

describe("GET /v1/generate: numbers in the query string are plain decimals", () => {
  test.each([
    ["max_tokens", "0x10", "an integer"],
    ["max_tokens", "1e1", "an integer"],
    ["max_tokens", " 5", "an integer"],
    ["max_tokens", "5 ", "an integer"],
    ["max_tokens", "+5", "an integer"],
    ["max_tokens", "5.0", "an integer"],
    ["seed", "0x2A", "an integer"],
    ["top_k", "Infinity", "an integer"],
    ["temperature", "1e-1", "a number"],
    ["temperature", "NaN", "a number"],
    ["top_p", "0x1", "a number"],
  ])("%s=%j is a 422 saying so", async (field, value, kind) => {
    const res = await get(`prompt=In&${field}=${encodeURIComponent(value)}`);
    const body = await expectProblem(res, 422, "/v1/generate");
    expect(body.errors).toEqual([{ path: `query.${field}`, message: `must be ${kind} in plain decimal digits, got '${value}'` }]);
    expect(model.calls).toEqual([]);
  });

  test("an empty value means the default: temperature= is not greedy, seed= is no seed, max_tokens= is the default", async () => {
    const res = await get("prompt=In&temperature=&seed=&max_tokens=&top_p=&top_k=");
    expect(res.status).toBe(200);
    await res.text();
    expect(lastCall()).toMatchObject({ temperature: 0.8, topP: 1, topK: 0, maxTokens: 50, fitToContext: true });
    expect(lastCall().seed).toBeUndefined();
  });

  test("plain decimals are read as numbers", async () => {
    const res = await get("prompt=In&temperature=0.25&top_p=.9&max_tokens=7&seed=42&top_k=3&presence_penalty=-1.5&min_tokens=2&ignore_eos=true");
    expect(res.status).toBe(200);
    await res.text();
    expect(lastCall()).toMatchObject({ temperature: 0.25, topP: 0.9, maxTokens: 7, fitToContext: false, seed: 42, topK: 3, presencePenalty: -1.5, minTokens: 2, ignoreEos: true });
  });

  test("out of range is a 422 in words: no raw zod texts", async () => {
    const body = await expectProblem(await get("prompt=In&max_tokens=51&temperature=3"), 422, "/v1/generate");
    expect(body.errors).toEqual([
      { path: "query.max_tokens", message: "must be at most 50" },
      { path: "query.temperature", message: "must be at most 2" },
    ]);
    const missing = await expectProblem(await get("max_tokens=5"), 422, "/v1/generate");
    expect(missing.errors).toEqual([{ path: "query.prompt", message: "is required" }]);
  });

  test("the events carry log-probabilities when asked", async () => {
    const text = await (await get("prompt=In&max_tokens=2&logprobs=1")).text();
    expect(text).toContain('event: token\ndata: {"text":" w0","index":0,"logprobs":[{"token":" w0","logprob":-0.5,"bytes":[32,119,48],"top_logprobs":[{"token":" w0","logprob":-0.5,"bytes":[32,119,48]}]}]}');
    expect(lastCall().logprobs).toBe(1);
  });
});

describe("POST /v1/generate", () => {
  test("defaults: 64 tokens capped by MAX_TOKENS, or as many as fit; temperature 0.8; no penalties, bias or logprobs", async () => {
    const res = await postJson(app, "/v1/generate", { prompt: "In the beginning" });
    expect(res.status).toBe(200);
    expect(lastCall()).toEqual({
      prompt: "In the beginning",
      maxTokens: 50,
      fitToContext: true,
      temperature: 0.8,
      topP: 1,
      topK: 0,
      stop: [],
      presencePenalty: 0,
      frequencyPenalty: 0,
      logitBias: new Map(),
      minTokens: 0,
      ignoreEos: false,
    });
  });

  test("a max_tokens the client gives is held to (not fitted to the context); parameters reach the engine by their engine names", async () => {
    const body = {
      prompt: "In the beginning",
      max_tokens: 10,
      temperature: 0,
      top_p: 0.5,
      top_k: 7,
      seed: 3,
      stop: ["\n", "\n"],
      presence_penalty: 0.5,
      frequency_penalty: -0.25,
      logit_bias: { "13": -100, "42": 2.5 },
      min_tokens: 4,
      ignore_eos: true,
    };
    const res = await postJson(app, "/v1/generate", body);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      model: "tiny-lm",
      text: " w0 w1 w2 w3 w4 w5 w6 w7 w8 w9",
      finish_reason: "length",
      usage: { prompt_tokens: 3, completion_tokens: 10, total_tokens: 13 },
    });
    expect(lastCall()).toEqual({
      prompt: "In the beginning",
      maxTokens: 10,
      fitToContext: false,
      temperature: 0,
      topP: 0.5,
      topK: 7,
      seed: 3,
      stop: ["\n"],
      presencePenalty: 0.5,
      frequencyPenalty: -0.25,
      logitBias: new Map([
        [13, -100],
        [42, 2.5],
      ]),
      minTokens: 4,
      ignoreEos: true,
    });
  });

  test("min_tokens above max_tokens, a bias key that is not a token id, penalties out of range: 422 naming each", async () => {
    const over = await expectProblem(await postJson(app, "/v1/generate", { prompt: "In", max_tokens: 5, min_tokens: 6 }), 422, "/v1/generate");
    expect(over.errors).toEqual([{ path: "min_tokens", message: "is 6, more than max_tokens (5)" }]);
    const bad = await expectProblem(
      await postJson(app, "/v1/generate", { prompt: "In", logit_bias: { the: 1, "7": 101 }, presence_penalty: 2.5, frequency_penalty: "1" }),
      422,
      "/v1/generate",
    );
    expect(bad.errors).toEqual([
      { path: "presence_penalty", message: "must be at most 2" },
      { path: "frequency_penalty", message: "must be a number, got a string" },
      { path: "logit_bias.7", message: "must be at most 100" },
      { path: "logit_bias.the", message: "keys are token ids (decimal integers)" },
    ]);
    expect(model.calls).toEqual([]);
  });

  test("logprobs: one entry per generated token in the JSON result", async () => {
    const res = await postJson(app, "/v1/generate", { prompt: "In", max_tokens: 2, logprobs: 0 });
    expect(await res.json()).toMatchObject({
      text: " w0 w1",
      logprobs: [
        { token: " w0", logprob: -0.5, bytes: [32, 119, 48], top_logprobs: [] },
        { token: " w1", logprob: -0.5, bytes: [32, 119, 49], top_logprobs: [] },
      ],
    });
  });

  test("no model named and none configured: the first text model serves", async () => {
    const res = await postJson(app, "/v1/generate", { prompt: "In", max_tokens: 1 });
    expect(((await res.json()) as { model: string }).model).toBe("tiny-lm");
  });
});
