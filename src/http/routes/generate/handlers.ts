import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import { defaultModelOf, type ModelCatalog } from "../../../engine/registry/repository.ts";
import type { GenerationEvent, GenerationParams } from "../../../engine/tasks/text/generator.ts";
import type { AppEnv } from "../../env.ts";
import { contentEntry } from "../../logprobs.ts";
import { ProblemError, problemType } from "../../problem.ts";
import { sseEvent, sseResponse } from "../../streaming/sse.ts";
import { toGenerationParams, toUsage, type TextLimits } from "../../text-params.ts";
import type { GenerateRoutes } from "./routes.ts";

export type GenerateOptions = TextLimits & {
  /** The text model used when a request names none (DEFAULT_TEXT_MODEL); unset: the first text model. */
  defaultModel: string | undefined;
  /** Milliseconds without an event before an SSE keep-alive comment. */
  keepAliveMs: number;
};

/** The `data` of a token event. */
const tokenData = (e: Extract<GenerationEvent, { type: "token" }>) =>
  JSON.stringify(e.logprobs ? { text: e.text, index: e.index, logprobs: e.logprobs.map(contentEntry) } : { text: e.text, index: e.index });

export function generateHandlers(catalog: ModelCatalog, options: GenerateOptions) {
  const run = async (c: Context<AppEnv>, modelName: string | undefined, params: GenerationParams, stream: boolean) => {
    const name = modelName ?? defaultModelOf(catalog, "text-generation", options.defaultModel);
    if (!name) throw new ProblemError(404, "Model not found", "this server has no text-generation model", { type: problemType("model_not_found") });
    const model = catalog.get(name, "text-generation");
    c.set("model", name);
    if (stream) {
      return sseResponse<GenerationEvent>(c, async (signal) => (await model.generate(params, signal)).events, {
        keepAliveMs: options.keepAliveMs,
        frame: (event) =>
          event.type === "token"
            ? sseEvent(tokenData(event), "token")
            : event.type === "done"
              ? sseEvent(JSON.stringify({ finish_reason: event.finishReason, usage: toUsage(event.usage) }), "done")
              : "",
        errorFrame: (problem) => sseEvent(JSON.stringify(problem), "error"),
      });
    }
    const { events } = await model.generate(params, c.req.raw.signal);
    let text = "";
    const logprobs: ReturnType<typeof contentEntry>[] = [];
    for await (const event of events) {
      if (event.type === "token") {
        text += event.text;
        for (const t of event.logprobs ?? []) logprobs.push(contentEntry(t));
      } else if (event.type === "done") {
        const result = { model: name, text, finish_reason: event.finishReason, usage: toUsage(event.usage) };
        return c.json(params.logprobs === undefined ? result : { ...result, logprobs }, 200);
      }
    }
    throw new Error("the generation ended without a done event");
  };

  const get: RouteHandler<GenerateRoutes["get"], AppEnv> = (c) => {
    const q = c.req.valid("query");
    const params = toGenerationParams(q.prompt, q, "generate", options, q.logprobs === undefined ? {} : { logprobs: q.logprobs });
    return run(c, q.model, params, true) as never;
  };
  const post: RouteHandler<GenerateRoutes["post"], AppEnv> = (c) => {
    const b = c.req.valid("json");
    const params = toGenerationParams(b.prompt, b, "generate", options, b.logprobs === undefined ? {} : { logprobs: b.logprobs });
    return run(c, b.model, params, b.stream ?? false) as never;
  };
  return { get, post };
}
