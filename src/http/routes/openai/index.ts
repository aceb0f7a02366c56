/**
 * OpenAI-compatible API: /v1/completions, /v1/chat/completions and /v1/models, in OpenAI's request, response
 * and streaming shapes (chunks as `data:` lines, `data: [DONE]` last, `stream_options.include_usage` honoured),
 * so the official clients work unchanged. Errors are translated by ./errors.ts.
 */
import { createRoute, z, type RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { statSync } from "node:fs";
import { join } from "node:path";
import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type { FinishReason, GenerationParams, Usage } from "../../../engine/tasks/text/generator.ts";
import type { AppEnv } from "../../env.ts";
import { requestLog } from "../../middleware/access-log.ts";
import { authErrors, createRouter, jsonBody, requires } from "../../openapi.ts";
import { toProblemError } from "../../problem.ts";
import { stopField, toGenerationParams, toUsage, UsageSchema } from "../../text-params.ts";
import { textModel, type GenerateOptions } from "../generate/index.ts";
import { disconnection, pumpEvents, sseEvent } from "../../streaming/sse.ts";
import { toOpenAIError } from "../../middleware/error-shape/openai.ts";

const OpenAIError = z
  .object({
    error: z.object({
      message: z.string().openapi({ example: "The model 'gpt-4' does not exist" }),
      type: z.string().openapi({ example: "invalid_request_error" }),
      param: z.string().nullable().openapi({ example: "model" }),
      code: z.string().nullable().openapi({ example: "model_not_found" }),
    }),
  })
  .openapi("OpenAIError");

const openAIErrorResponses = Object.fromEntries(
  [
    [400, "Invalid parameters"],
    [401, "No API key, or an unknown one"],
    [403, "The key lacks the generate scope"],
    [404, "No such model"],
    [429, "Rate limit reached; see Retry-After"],
    [500, "Server error"],
    [503, "Overloaded or not ready; see Retry-After"],
  ].map(([status, description]) => [status, { description, content: { "application/json": { schema: OpenAIError } } }]),
);

const ModelObject = z
  .object({
    id: z.string().openapi({ example: "kjv-gpt" }),
    object: z.literal("model"),
    created: z.number().int().openapi({ description: "Unix time the model file was written", example: 1795000000 }),
    owned_by: z.string().openapi({ example: "onnx-serve" }),
    task: z.string().openapi({ example: "text-generation" }),
    version: z.string().openapi({ example: "1.0.0" }),
    description: z.string(),
  })
  .openapi("Model");

const ModelList = z.object({ object: z.literal("list"), data: z.array(ModelObject) }).openapi("ModelList");

const sampling = (cap: number) => ({
  model: z.string().openapi({ example: "kjv-gpt" }),
  max_tokens: z.number().int().min(1).max(cap, { error: `max_tokens may be at most ${cap} on this server` }).nullish(),
  temperature: z.number().min(0).max(2).nullish().openapi({ description: "Default 1" }),
  top_p: z.number().gt(0).max(1).nullish().openapi({ description: "Default 1" }),
  top_k: z.number().int().min(0).nullish().openapi({ description: "Extension (as in vLLM): keep the k most likely tokens; 0 = off" }),
  seed: z.number().int().min(0).max(2 ** 32 - 1).nullish(),
  stop: stopField.nullable(),
  n: z.literal(1, { error: "only n = 1 is supported" }).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
});

type SamplingBody = {
  max_tokens?: number | null | undefined;
  max_completion_tokens?: number | null | undefined;
  temperature?: number | null | undefined;
  top_p?: number | null | undefined;
  top_k?: number | null | undefined;
  seed?: number | null | undefined;
  stop?: string | string[] | null | undefined;
};

/** OpenAI's defaults: temperature 1, top_p 1; max_tokens 16 for completions, as many as fit for chat (undefined). */
function params(prompt: string, b: SamplingBody, defaultMaxTokens: number | undefined): GenerationParams {
  return toGenerationParams(prompt, {
    max_tokens: b.max_completion_tokens ?? b.max_tokens ?? defaultMaxTokens,
    temperature: b.temperature ?? 1,
    top_p: b.top_p ?? 1,
    top_k: b.top_k ?? 0,
    seed: b.seed ?? undefined,
    stop: b.stop ?? undefined,
  });
}

const ChatMessage = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: z.union([z.string(), z.array(z.object({ type: z.literal("text"), text: z.string() }))]).nullable(),
});

/**
 * The models here are not chat-tuned, so a conversation becomes one prompt: the messages' texts, one per line,
 * and the reply continues it.
 */
export function chatPrompt(messages: z.infer<typeof ChatMessage>[]): string {
  return messages
    .map((m) => (typeof m.content === "string" ? m.content : (m.content ?? []).map((p) => p.text).join("")))
    .filter((t) => t.length > 0)
    .join("\n");
}

export function openAIRouter(repository: ModelCatalog, options: GenerateOptions) {
  const created = new Map<string, number>();
  const modelObject = (name: string) => {
    const m = repository.manifests.find((x) => x.name === name)!;
    if (!created.has(name)) {
      const mtime = (() => {
        try {
          return statSync(join(repository.root, name, "model.onnx")).mtimeMs;
        } catch {
          return Date.now();
        }
      })();
      created.set(name, Math.floor(mtime / 1000));
    }
    return { id: m.name, object: "model" as const, created: created.get(name)!, owned_by: "onnx-serve", task: m.task, version: m.version, description: m.description };
  };

  const listRoute = createRoute({
    method: "get",
    path: "/v1/models",
    tags: ["OpenAI"],
    summary: "List the models (OpenAI's model list, with each model's task and version)",
    responses: { 200: { description: "Every model this server has", content: { "application/json": { schema: ModelList } } } },
  });
  const retrieveRoute = createRoute({
    method: "get",
    path: "/v1/models/{model}",
    tags: ["OpenAI"],
    summary: "One model (OpenAI's model object)",
    request: { params: z.object({ model: z.string().openapi({ param: { name: "model", in: "path" }, example: "kjv-gpt" }) }) },
    responses: { 200: { description: "The model", content: { "application/json": { schema: ModelObject } } }, 404: openAIErrorResponses[404]! },
  });

  const completionChunkExample =
    'data: {"id":"cmpl-1","object":"text_completion","created":1795000000,"model":"kjv-gpt","choices":[{"text":" the","index":0,"logprobs":null,"finish_reason":null}]}\n\n' +
    "data: [DONE]\n\n";
  const completionsRoute = createRoute({
    method: "post",
    path: "/v1/completions",
    tags: ["OpenAI"],
    ...requires("generate"),
    summary: "Complete a prompt (OpenAI completions)",
    request: {
      body: jsonBody(
        z
          .object({
            ...sampling(options.maxTokens),
            prompt: z
              .union([z.string().min(1).max(options.maxPromptChars), z.array(z.string().min(1).max(options.maxPromptChars)).length(1, { error: "only one prompt per request is supported" })])
              .openapi({ example: "In the beginning" }),
          })
          .openapi({ example: { model: "kjv-gpt", prompt: "In the beginning", max_tokens: 16, temperature: 0.8 } }),
      ),
    },
    responses: {
      200: {
        description: "The completion, or with `stream: true` its chunks as server-sent events",
        content: {
          "application/json": {
            schema: z.object({
              id: z.string(),
              object: z.literal("text_completion"),
              created: z.number().int(),
              model: z.string(),
              choices: z.array(z.object({ text: z.string(), index: z.number().int(), logprobs: z.null(), finish_reason: z.enum(["stop", "length"]) })),
              usage: UsageSchema,
            }).openapi({ example: { id: "cmpl-1", object: "text_completion", created: 1795000000, model: "kjv-gpt", choices: [{ text: " God created", index: 0, logprobs: null, finish_reason: "length" }], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } } }),
          },
          "text/event-stream": { schema: z.string().openapi({ example: completionChunkExample }) },
        },
      },
      ...openAIErrorResponses,
    },
  });

  const chatRoute = createRoute({
    method: "post",
    path: "/v1/chat/completions",
    tags: ["OpenAI"],
    ...requires("generate"),
    summary: "Chat (OpenAI chat completions); the messages' texts, one per line, form the prompt",
    request: {
      body: jsonBody(
        z
          .object({
            ...sampling(options.maxTokens),
            max_completion_tokens: z.number().int().min(1).max(options.maxTokens).nullish(),
            messages: z.array(ChatMessage).min(1, { error: "messages must hold at least one message" }),
          })
          .openapi({ example: { model: "kjv-gpt", messages: [{ role: "user", content: "And God said" }], max_tokens: 32 } }),
      ),
    },
    responses: {
      200: {
        description: "The reply, or with `stream: true` its chunks as server-sent events",
        content: {
          "application/json": {
            schema: z.object({
              id: z.string(),
              object: z.literal("chat.completion"),
              created: z.number().int(),
              model: z.string(),
              choices: z.array(z.object({ index: z.number().int(), message: z.object({ role: z.literal("assistant"), content: z.string() }), logprobs: z.null(), finish_reason: z.enum(["stop", "length"]) })),
              usage: UsageSchema,
            }).openapi({ example: { id: "chatcmpl-1", object: "chat.completion", created: 1795000000, model: "kjv-gpt", choices: [{ index: 0, message: { role: "assistant", content: " and there was light." }, logprobs: null, finish_reason: "stop" }], usage: { prompt_tokens: 3, completion_tokens: 6, total_tokens: 9 } } }),
          },
          "text/event-stream": { schema: z.string() },
        },
      },
      ...openAIErrorResponses,
    },
  });

  /** Runs one generation in OpenAI's framing; `kind` picks the completion or the chat shapes. */
  const run = async (c: Context<AppEnv>, kind: "text" | "chat", modelName: string, generation: GenerationParams, stream: boolean, includeUsage: boolean) => {
    const model = textModel(repository, modelName, undefined);
    c.set("model", model.manifest.name);
    const client = disconnection(c.req.raw);
    const { events } = await model.generate(generation, client.signal);
    const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`;
    const createdAt = Math.floor(Date.now() / 1000);
    const head = { id, object: kind === "chat" ? "chat.completion.chunk" : "text_completion", created: createdAt, model: model.manifest.name };
    const choice = (text: string | undefined, finish: FinishReason | null, first = false) =>
      kind === "chat"
        ? { index: 0, delta: text === undefined ? {} : first ? { role: "assistant", content: text } : { content: text }, logprobs: null, finish_reason: finish }
        : { text: text ?? "", index: 0, logprobs: null, finish_reason: finish };

    if (!stream) {
      let text = "";
      let done: { finishReason: FinishReason; usage: Usage } | undefined;
      for await (const event of events) {
        if (event.type === "token") text += event.text;
        else done = event;
      }
      if (!done) throw new Error("the generation ended without a done event");
      const base = { id, object: kind === "chat" ? "chat.completion" : "text_completion", created: createdAt, model: model.manifest.name };
      const choices =
        kind === "chat"
          ? [{ index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason: done.finishReason }]
          : [{ text, index: 0, logprobs: null, finish_reason: done.finishReason }];
      return c.json({ ...base, choices, usage: toUsage(done.usage) }, 200);
    }

    return streamSSE(c, async (sse) => {
      client.watch(sse);
      const send = (chunk: object) => sse.write(sseEvent(JSON.stringify(includeUsage ? { ...chunk, usage: null } : chunk)));
      try {
        if (kind === "chat") await send({ ...head, choices: [choice("", null, true)] });
        await pumpEvents(events, sse, options.keepAliveMs, async (event) => {
          if (event.type === "token") return send({ ...head, choices: [choice(event.text, null)] });
          await send({ ...head, choices: [choice(undefined, event.finishReason)] });
          if (includeUsage) await sse.write(sseEvent(JSON.stringify({ ...head, choices: [], usage: toUsage(event.usage) })));
        });
      } catch (error) {
        requestLog(c)?.error({ err: error }, "generation failed while streaming");
        const problem = toProblemError(error);
        const body = problem
          ? toOpenAIError({ type: problem.options.type ?? "about:blank", title: problem.title, status: problem.status, detail: problem.message }).body
          : { error: { message: "generation failed; the failure is logged", type: "server_error", param: null, code: null } };
        if (!sse.aborted) await sse.write(sseEvent(JSON.stringify(body)));
      }
      if (!sse.aborted) await sse.write(sseEvent("[DONE]"));
    });
  };

  const completions: RouteHandler<typeof completionsRoute, AppEnv> = (c) => {
    const b = c.req.valid("json");
    const prompt = Array.isArray(b.prompt) ? b.prompt[0]! : b.prompt;
    return run(c, "text", b.model, params(prompt, b, Math.min(16, options.maxTokens)), b.stream ?? false, b.stream_options?.include_usage ?? false) as never;
  };
  const chat: RouteHandler<typeof chatRoute, AppEnv> = (c) => {
    const b = c.req.valid("json");
    return run(c, "chat", b.model, params(chatPrompt(b.messages), b, undefined), b.stream ?? false, b.stream_options?.include_usage ?? false) as never;
  };

  return createRouter<AppEnv>()
    .openapi(listRoute, (c) => c.json({ object: "list" as const, data: repository.manifests.map((m) => modelObject(m.name)) }, 200))
    .openapi(retrieveRoute, (c) => {
      repository.get(c.req.valid("param").model); // 404 for an unknown model
      return c.json(modelObject(c.req.valid("param").model), 200);
    })
    .openapi(completionsRoute, completions)
    .openapi(chatRoute, chat);
}
