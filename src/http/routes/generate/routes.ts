/**
 * /v1/generate: token streaming for browsers (GET, for EventSource) and scripts (POST, SSE or one JSON result).
 * Events: `token` {text, index[, logprobs]} per piece, then `done` {finish_reason, usage}; `error` {problem} if
 * generation fails after streaming began (before that, errors are ordinary problem+json responses).
 */
import { createRoute, z } from "@hono/zod-openapi";
import { TokenLogprobSchema } from "../../logprobs.ts";
import { authErrors, jsonBody, jsonBodyErrors, problemResponses, requires } from "../../openapi.ts";
import { promptText, queryNumber, queryTextFields, textFields, UsageSchema, type TextLimits } from "../../text-params.ts";

const sseResponse = (description: string) => ({
  description,
  content: {
    "text/event-stream": {
      schema: z.string().openapi({
        example:
          'event: token\ndata: {"text":" the","index":0}\n\nevent: token\ndata: {"text":" heaven","index":1}\n\n' +
          'event: done\ndata: {"finish_reason":"length","usage":{"prompt_tokens":6,"completion_tokens":2,"total_tokens":8}}\n\n',
      }),
    },
  },
});

const GenerationResult = z
  .object({
    model: z.string().openapi({ example: "kjv-gpt" }),
    text: z.string().openapi({ example: " the heaven and the earth." }),
    finish_reason: z.enum(["stop", "length"]).openapi({ example: "stop" }),
    usage: UsageSchema,
    logprobs: z.array(TokenLogprobSchema).optional().openapi({ description: "With `logprobs`: one entry per generated token" }),
  })
  .openapi("GenerationResult");

const LOGPROBS_DESCRIPTION = "Return each generated token's log-probability with this many most likely alternatives (0 to 20)";

export function generateRoutes(limits: TextLimits, defaultModel: string | undefined) {
  const model = z.string().optional().openapi({ description: `Model name (default: ${defaultModel ?? "none"})`, example: defaultModel });

  const get = createRoute({
    method: "get",
    path: "/v1/generate",
    tags: ["Generate"],
    ...requires("generate", { inQuery: true }),
    summary: "Stream generated tokens as server-sent events (for EventSource)",
    description:
      "Events: `token` with `{text, index}` per piece of text, then `done` with `{finish_reason, usage}`; `error` with a problem object " +
      "if generation fails after streaming began. EventSource cannot set headers, so this route alone also takes the API key as `api_key` " +
      "in the query. Numbers are plain decimals (no hex, exponents or spaces); an empty value means the default.",
    request: {
      query: z.object({
        prompt: promptText(limits).openapi({ description: "The text to continue", example: "In the beginning God created" }),
        model,
        ...queryTextFields(limits),
        logprobs: queryNumber(z.number().int().min(0).max(20).optional().openapi({ description: LOGPROBS_DESCRIPTION }), true),
        api_key: z.string().optional().openapi({ description: "The API key, for clients that cannot send headers" }),
      }),
    },
    responses: { 200: sseResponse("The token stream"), ...problemResponses(404, 422, ...authErrors, 500, 503) },
  });

  const post = createRoute({
    method: "post",
    path: "/v1/generate",
    tags: ["Generate"],
    ...requires("generate"),
    summary: "Generate text: streamed as server-sent events with `stream: true`, else one JSON result",
    request: {
      body: jsonBody(
        z
          .object({
            prompt: promptText(limits).openapi({ description: "The text to continue", example: "In the beginning God created" }),
            model,
            ...textFields(limits, "generate"),
            logprobs: z.number().int().min(0).max(20).optional().openapi({ description: LOGPROBS_DESCRIPTION, example: 2 }),
            stream: z.boolean().optional().openapi({ description: "Server-sent events instead of one JSON result (default false)" }),
          })
          .openapi({ example: { prompt: "In the beginning God created", max_tokens: 40, temperature: 0.8, seed: 42, stream: false } }),
      ),
    },
    responses: {
      200: {
        description: "The completion (JSON), or with `stream: true` the token stream (text/event-stream)",
        content: { "application/json": { schema: GenerationResult }, ...sseResponse("").content },
      },
      ...problemResponses(...jsonBodyErrors, ...authErrors, 404, 503),
    },
  });

  return { get, post };
}

export type GenerateRoutes = ReturnType<typeof generateRoutes>;
