/**
 * /v1/generate: token streaming for browsers (GET, for EventSource) and scripts (POST, SSE or one JSON result).
 * Events: `token` {text, index} per piece, then `done` {finish_reason, usage}; `error` {problem} if generation
 * fails after streaming began (before that, errors are ordinary problem+json responses).
 */
import { createRoute, z, type RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { ModelCatalog } from "../../../engine/registry/repository.ts";
import type { GenerationParams, TextModel } from "../../../engine/tasks/text/generator.ts";
import type { AppEnv } from "../../env.ts";
import { requestLog } from "../../middleware/access-log.ts";
import { authErrors, createRouter, jsonBody, jsonBodyErrors, problemResponses, requires } from "../../openapi.ts";
import { ProblemError, problemType, toProblemError } from "../../problem.ts";
import { disconnection, pumpEvents, sseEvent } from "../../streaming/sse.ts";
import { promptField, samplingFields, stopField, toGenerationParams, toUsage, UsageSchema, type SamplingLimits } from "../../text-params.ts";

export type GenerateOptions = SamplingLimits & {
  /** The text model used when a request names none. */
  defaultModel: string | undefined;
  /** Milliseconds without an event before an SSE keep-alive comment. */
  keepAliveMs: number;
};

/** The text-generation model named (or the default); 404 / 422 problems otherwise. */
export function textModel(repository: ModelCatalog, name: string | undefined, fallback: string | undefined): TextModel {
  const chosen = name ?? fallback;
  if (!chosen) throw new ProblemError(404, "Model not found", "this server has no text-generation model", { type: problemType("model_not_found") });
  const model = repository.get(chosen);
  if (model.task !== "text-generation") {
    throw new ProblemError(422, "Wrong kind of model", `model '${chosen}' is a ${model.task} model, not a text-generation one`, { type: problemType("wrong_task") });
  }
  return model;
}

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
  })
  .openapi("GenerationResult");

export function generateRouter(repository: ModelCatalog, options: GenerateOptions) {
  const modelField = z.string().optional().openapi({ description: `Model name (default: ${options.defaultModel ?? "none"})`, example: options.defaultModel });
  const errors = problemResponses(...jsonBodyErrors, ...authErrors, 404, 503);

  const getRoute = createRoute({
    method: "get",
    path: "/v1/generate",
    tags: ["Generate"],
    ...requires("generate"),
    summary: "Stream generated tokens as server-sent events (for EventSource)",
    description:
      "Events: `token` with `{text, index}` per piece of text, then `done` with `{finish_reason, usage}`; `error` with a problem object " +
      "if generation fails after streaming began. EventSource cannot set headers, so this route alone also takes the API key as `api_key` in the query.",
    request: {
      query: z.object({
        prompt: promptField(options),
        model: modelField,
        ...samplingFields(options, true),
        stop: z.string().min(1).optional().openapi({ description: "A sequence that ends the completion", example: "." }),
        api_key: z.string().optional().openapi({ description: "The API key, for clients that cannot send headers" }),
      }),
    },
    responses: { 200: sseResponse("The token stream"), ...errors },
  });

  const postRoute = createRoute({
    method: "post",
    path: "/v1/generate",
    tags: ["Generate"],
    ...requires("generate"),
    summary: "Generate text: streamed as server-sent events with `stream: true`, else one JSON result",
    request: {
      body: jsonBody(
        z
          .object({ prompt: promptField(options), model: modelField, ...samplingFields(options), stop: stopField, stream: z.boolean().default(false) })
          .openapi({ example: { prompt: "In the beginning God created", max_tokens: 40, temperature: 0.8, seed: 42, stream: false } }),
      ),
    },
    responses: {
      200: {
        description: "The completion (JSON), or with `stream: true` the token stream (text/event-stream)",
        content: { "application/json": { schema: GenerationResult }, ...sseResponse("").content },
      },
      ...errors,
    },
  });

  const run = async (c: Context<AppEnv>, modelName: string | undefined, params: GenerationParams, stream: boolean) => {
    const model = textModel(repository, modelName, options.defaultModel);
    c.set("model", model.manifest.name);
    const client = disconnection(c.req.raw);
    const { events } = await model.generate(params, client.signal);
    if (!stream) {
      let text = "";
      for await (const event of events) {
        if (event.type === "token") text += event.text;
        else return c.json({ model: model.manifest.name, text, finish_reason: event.finishReason, usage: toUsage(event.usage) }, 200);
      }
      throw new Error("the generation ended without a done event");
    }
    return streamSSE(c, async (sse) => {
      client.watch(sse);
      try {
        await pumpEvents(events, sse, options.keepAliveMs, (event) =>
          sse.write(
            event.type === "token"
              ? sseEvent(JSON.stringify({ text: event.text, index: event.index }), "token")
              : sseEvent(JSON.stringify({ finish_reason: event.finishReason, usage: toUsage(event.usage) }), "done"),
          ),
        );
      } catch (error) {
        const problem = toProblemError(error) ?? new ProblemError(500, "Internal Server Error", "generation failed; the failure is logged");
        requestLog(c)?.error({ err: error }, "generation failed while streaming");
        if (!sse.aborted) {
          const body = { type: problem.options.type ?? "about:blank", title: problem.title, status: problem.status, detail: problem.message, instance: c.req.path, request_id: c.get("requestId") };
          await sse.write(sseEvent(JSON.stringify(body), "error"));
        }
      }
    });
  };

  const getHandler: RouteHandler<typeof getRoute, AppEnv> = (c) => {
    const q = c.req.valid("query");
    return run(c, q.model, toGenerationParams(q.prompt, q), true) as never;
  };
  const postHandler: RouteHandler<typeof postRoute, AppEnv> = (c) => {
    const b = c.req.valid("json");
    return run(c, b.model, toGenerationParams(b.prompt, b), b.stream) as never;
  };
  return createRouter<AppEnv>().openapi(getRoute, getHandler).openapi(postRoute, postHandler);
}
