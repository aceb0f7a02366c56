/**
 * OpenAI-compatible API: /v1/completions, /v1/chat/completions and /v1/models, in OpenAI's request, response and
 * streaming shapes (chunks as `data:` lines, `data: [DONE]` last, `stream_options.include_usage` honoured), so the
 * official clients work unchanged. Their errors are declared in OpenAI's shape, which is how they get it
 * (middleware/error-shape).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { openAIErrorResponses } from "../../middleware/error-shape/openai.ts";
import { jsonBody, requires } from "../../openapi.ts";
import type { TextLimits } from "../../text-params.ts";
import { chatBody, ChatCompletionSchema, completionsBody, CompletionSchema, ModelList, ModelObject } from "./schemas.ts";

const completionChunkExample =
  'data: {"id":"cmpl-1","object":"text_completion","created":1795000000,"model":"kjv-gpt","choices":[{"text":" the","index":0,"logprobs":null,"finish_reason":null}]}\n\n' +
  "data: [DONE]\n\n";
const chatChunkExample =
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1795000000,"model":"kjv-gpt","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n' +
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1795000000,"model":"kjv-gpt","choices":[{"index":0,"delta":{"content":" and"},"logprobs":null,"finish_reason":null}]}\n\n' +
  "data: [DONE]\n\n";

export function openAIRoutes(limits: TextLimits) {
  const list = createRoute({
    method: "get",
    path: "/v1/models",
    tags: ["OpenAI"],
    summary: "List the models (OpenAI's model list, with each model's task, versions and state)",
    responses: { 200: { description: "Every model this server serves", content: { "application/json": { schema: ModelList } } }, ...openAIErrorResponses(500) },
  });

  const retrieve = createRoute({
    method: "get",
    path: "/v1/models/{model}",
    tags: ["OpenAI"],
    summary: "One model (OpenAI's model object, with its task, versions, state and, for text models, context_length)",
    description: "Answers for a model in any state: `loading`, `ready`, or `failed` with the reason in `error`.",
    request: { params: z.object({ model: z.string().openapi({ param: { name: "model", in: "path" }, example: "kjv-gpt" }) }) },
    responses: { 200: { description: "The model", content: { "application/json": { schema: ModelObject } } }, ...openAIErrorResponses(404) },
  });

  const completions = createRoute({
    method: "post",
    path: "/v1/completions",
    tags: ["OpenAI"],
    ...requires("generate"),
    summary: "Complete a prompt (OpenAI completions)",
    request: { body: jsonBody(completionsBody(limits)) },
    responses: {
      200: {
        description: "The completion, or with `stream: true` its chunks as server-sent events",
        content: { "application/json": { schema: CompletionSchema }, "text/event-stream": { schema: z.string().openapi({ example: completionChunkExample }) } },
      },
      ...openAIErrorResponses(),
    },
  });

  const chat = createRoute({
    method: "post",
    path: "/v1/chat/completions",
    tags: ["OpenAI"],
    ...requires("generate"),
    summary: "Chat (OpenAI chat completions); the messages' texts, one per line, form the prompt",
    request: { body: jsonBody(chatBody(limits)) },
    responses: {
      200: {
        description: "The reply, or with `stream: true` its chunks as server-sent events",
        content: { "application/json": { schema: ChatCompletionSchema }, "text/event-stream": { schema: z.string().openapi({ example: chatChunkExample }) } },
      },
      ...openAIErrorResponses(),
    },
  });

  return { list, retrieve, completions, chat };
}

export type OpenAIRoutes = ReturnType<typeof openAIRoutes>;
