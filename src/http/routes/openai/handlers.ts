import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type { FinishReason, GenerationEvent, GenerationParams, TextModel, TokenLogprob, Usage } from "../../../engine/tasks/text/generator.ts";
import type { AppEnv } from "../../env.ts";
import { completionLogprobs, contentEntry } from "../../logprobs.ts";
import { toOpenAIError } from "../../middleware/error-shape/openai.ts";
import { validationProblem } from "../../problem.ts";
import { modelObject } from "../../schemas.ts";
import { merge } from "../../streaming/pump.ts";
import { sseEvent, sseResponse } from "../../streaming/sse.ts";
import { promptText, toGenerationParams, toUsage, type TextLimits } from "../../text-params.ts";
import type { OpenAIRoutes } from "./routes.ts";
import { chatPrompt } from "./schemas.ts";

export type OpenAIOptions = TextLimits & {
  /** Milliseconds without an event before an SSE keep-alive comment. */
  keepAliveMs: number;
};

type Kind = "text" | "chat";
type PromptToken = Extract<GenerationEvent, { type: "prompt" }>["tokens"][number];

/** How one request wants its choices: how many, and what besides the text. */
type Shape = {
  kind: Kind;
  n: number;
  /** Completions: the prompt goes before each choice's text. */
  echo?: string;
  /** Log-probabilities asked for. */
  logprobs: boolean;
  stream: boolean;
  includeUsage: boolean;
};

/** One choice as it accumulates. */
type Choice = { text: string; prompt: PromptToken[]; tokens: TokenLogprob[]; done?: { finishReason: FinishReason; usage: Usage } };

export function openAIHandlers(catalog: ModelCatalog, options: OpenAIOptions) {
  // Every model the server knows, in any state: a failed one shows why.
  const list: RouteHandler<OpenAIRoutes["list"], AppEnv> = (c) => c.json({ object: "list" as const, data: catalog.names.map((name) => modelObject(catalog, name)) }, 200);

  const retrieve: RouteHandler<OpenAIRoutes["retrieve"], AppEnv> = (c) => c.json(modelObject(catalog, c.req.valid("param").model), 200);

  const start = async (model: TextModel, params: GenerationParams, n: number, signal: AbortSignal) => {
    const started = await Promise.allSettled(
      Array.from({ length: n }, (_, i) => model.generate(params.seed === undefined || i === 0 ? params : { ...params, seed: params.seed + i }, signal)),
    );
    const refused = started.find((s) => s.status === "rejected");
    if (refused) {
      await Promise.all(started.map((s) => (s.status === "fulfilled" ? s.value.events[Symbol.asyncIterator]().return?.() : undefined)));
      throw refused.reason;
    }
    return started.map((s) => (s as PromiseFulfilledResult<Awaited<ReturnType<TextModel["generate"]>>>).value);
  };

  const run = async (c: Context<AppEnv>, modelName: string, params: GenerationParams, shape: Shape) => {
    const model = catalog.get(modelName, "text-generation");
    c.set("model", modelName);
    const id = `${shape.kind === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`;
    const created = Math.floor(Date.now() / 1000);
    const choices: Choice[] = Array.from({ length: shape.n }, () => ({ text: shape.echo ?? "", prompt: [], tokens: [] }));
    let promptTokens = 0;
    const usage = () => {
      const completionTokens = choices.reduce((sum, ch) => sum + (ch.done?.usage.completionTokens ?? 0), 0);
      return toUsage({ promptTokens, completionTokens, totalTokens: promptTokens + completionTokens });
    };

    if (!shape.stream) {
      const generations = await start(model, params, shape.n, c.req.raw.signal);
      promptTokens = generations[0]!.promptTokens;
      for await (const { index, event } of merge(generations.map((g) => g.events))) {
        const choice = choices[index]!;
        if (event.type === "prompt") choice.prompt = event.tokens;
        else if (event.type === "token") {
          choice.text += event.text;
          if (event.logprobs) choice.tokens.push(...event.logprobs);
        } else choice.done = event;
      }
      const body = choices.map((ch, index) => {
        if (!ch.done) throw new Error("a generation ended without a done event");
        if (shape.kind === "chat") {
          const logprobs = shape.logprobs ? { content: ch.tokens.map(contentEntry) } : null;
          return { index, message: { role: "assistant", content: ch.text, refusal: null }, logprobs, finish_reason: ch.done.finishReason };
        }
        const logprobs = shape.logprobs ? completionLogprobs([...ch.prompt, ...ch.tokens], 0) : null;
        return { text: ch.text, index, logprobs, finish_reason: ch.done.finishReason };
      });
      return c.json({ id, object: shape.kind === "chat" ? "chat.completion" : "text_completion", created, model: modelName, choices: body, usage: usage() }, 200);
    }

    const head = { id, object: shape.kind === "chat" ? "chat.completion.chunk" : "text_completion", created, model: modelName };
    const chunk = (choice: object) => sseEvent(JSON.stringify(shape.includeUsage ? { ...head, choices: [choice], usage: null } : { ...head, choices: [choice] }));
    const textChunk = (index: number, text: string, logprobs: object | null, finish: FinishReason | null) =>
      chunk(
        shape.kind === "chat"
          ? { index, delta: text === "" && finish ? {} : { content: text }, logprobs, finish_reason: finish }
          : { text, index, logprobs, finish_reason: finish },
      );
    // Chat opens each choice with the assistant's role; an echo opens each completion with the prompt (unless its
    // log-probabilities are wanted: then the prompt event brings them).
    const first = Array.from({ length: shape.n }, (_, index) =>
      shape.kind === "chat"
        ? chunk({ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null })
        : shape.echo !== undefined && !shape.logprobs
          ? textChunk(index, shape.echo, null, null)
          : "",
    ).join("");
    return sseResponse(
      c,
      async (signal) => {
        const generations = await start(model, params, shape.n, signal);
        promptTokens = generations[0]!.promptTokens;
        return merge(generations.map((g) => g.events));
      },
      {
        keepAliveMs: options.keepAliveMs,
        first,
        frame: ({ index, event }) => {
          const choice = choices[index]!;
          if (event.type === "prompt") return textChunk(index, shape.echo ?? "", completionLogprobs(event.tokens, 0), null);
          if (event.type === "done") {
            choice.done = event;
            return textChunk(index, "", null, event.finishReason);
          }
          const offset = choice.text.length;
          choice.text += event.text;
          const logprobs = !shape.logprobs ? null : shape.kind === "chat" ? { content: (event.logprobs ?? []).map(contentEntry) } : completionLogprobs(event.logprobs ?? [], offset);
          return textChunk(index, event.text, logprobs, null);
        },
        errorFrame: (problem) => sseEvent(JSON.stringify(toOpenAIError(problem).body)),
        last: () => (shape.includeUsage ? sseEvent(JSON.stringify({ ...head, choices: [], usage: usage() })) : "") + sseEvent("[DONE]"),
      },
    );
  };

  const completions: RouteHandler<OpenAIRoutes["completions"], AppEnv> = (c) => {
    const b = c.req.valid("json");
    const prompt = Array.isArray(b.prompt) ? b.prompt[0]! : b.prompt;
    const logprobs = b.logprobs ?? undefined;
    const params = toGenerationParams(prompt, b, "completions", options, logprobs === undefined ? {} : { logprobs, promptLogprobs: b.echo === true });
    return run(c, b.model, params, {
      kind: "text",
      n: b.n ?? 1,
      ...(b.echo ? { echo: prompt } : {}),
      logprobs: logprobs !== undefined,
      stream: b.stream ?? false,
      includeUsage: b.stream_options?.include_usage ?? false,
    }) as never;
  };

  const chat: RouteHandler<OpenAIRoutes["chat"], AppEnv> = (c) => {
    const b = c.req.valid("json");
    const prompt = chatPrompt(b.messages);
    const checked = promptText(options).safeParse(prompt);
    if (!checked.success) throw validationProblem(checked.error.issues, ["messages"]);
    const fields = { ...b, max_tokens: b.max_completion_tokens ?? b.max_tokens };
    const params = toGenerationParams(prompt, fields, "chat", options, b.logprobs ? { logprobs: b.top_logprobs ?? 0 } : {});
    return run(c, b.model, params, {
      kind: "chat",
      n: b.n ?? 1,
      logprobs: b.logprobs === true,
      stream: b.stream ?? false,
      includeUsage: b.stream_options?.include_usage ?? false,
    }) as never;
  };

  return { list, retrieve, completions, chat };
}
