/** OpenAI's request and response shapes, for the parameters a completion model can honour and those it refuses by name. */
import { z } from "@hono/zod-openapi";
import { CompletionLogprobsSchema, TokenLogprobSchema } from "../../logprobs.ts";
import { ModelObject } from "../../schemas.ts";
import { MAX_CHOICES, promptText, textFields, UsageSchema, type TextLimits } from "../../text-params.ts";

export { ModelObject };

export const ModelList = z.object({ object: z.literal("list"), data: z.array(ModelObject) }).openapi("ModelList");

const present = (v: unknown) => v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);

/** A parameter OpenAI has and this server cannot honour: refused by name, never silently ignored. */
const refused = (why: string) =>
  z
    .unknown()
    .optional()
    .superRefine((value, ctx) => {
      if (present(value)) ctx.addIssue({ code: "custom", message: why });
    })
    .openapi({ description: `Not supported: ${why}` });

const NO_TOOLS = "this model cannot call tools or functions";

/** What both OpenAI routes take besides the prompt. */
function common(limits: TextLimits, family: "completions" | "chat") {
  return {
    model: z.string().openapi({ example: "kjv-gpt" }),
    ...textFields(limits, family),
    n: z
      .number()
      .int()
      .min(1)
      .max(MAX_CHOICES)
      .nullish()
      .openapi({ description: `Choices to generate, each its own stream in the running batch (1 to ${MAX_CHOICES}; default 1). With a seed, choice i uses seed + i.` }),
    stream: z.boolean().nullish(),
    stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  };
}

const textPart = z.object({ type: z.literal("text"), text: z.string() });
const otherPart = z
  .looseObject({ type: z.string() })
  .superRefine((part, ctx) => {
    if (part.type !== "text") ctx.addIssue({ code: "custom", message: `'${part.type}' content parts are not supported: this model reads text only` });
  });

const ChatMessage = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: z.union([z.string(), z.array(z.union([textPart, otherPart]))]).nullable(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

export function completionsBody(limits: TextLimits) {
  return z
    .object({
      ...common(limits, "completions"),
      prompt: z
        .union([promptText(limits), z.array(promptText(limits)).length(1, { error: "must hold exactly one prompt: one prompt per request is supported" })])
        .openapi({ example: "In the beginning" }),
      echo: z.boolean().nullish().openapi({ description: "Return the prompt before the completion (and, with logprobs, its tokens' log-probabilities)" }),
      logprobs: z.number().int().min(0).max(5).nullish().openapi({ description: "Return each token's log-probability with this many most likely alternatives (0 to 5)" }),
      best_of: z
        .number()
        .int()
        .min(1)
        .nullish()
        .refine((v) => v == null || v === 1, { error: "best_of above 1 is not supported: ask for n choices and pick one" })
        .openapi({ description: "Only 1 (the default) is supported" }),
      suffix: refused("this model completes text forwards only (no insertion)"),
    })
    .openapi({ example: { model: "kjv-gpt", prompt: "In the beginning", max_tokens: 16, temperature: 0.8 } });
}

export function chatBody(limits: TextLimits) {
  return z
    .object({
      ...common(limits, "chat"),
      max_completion_tokens: textFields(limits, "chat").max_tokens.openapi({ description: "The same as max_tokens (OpenAI's newer name); wins over it" }),
      messages: z.array(ChatMessage).min(1, { error: "must hold at least one message" }),
      logprobs: z.boolean().nullish().openapi({ description: "Return each token's log-probability in `choices[].logprobs.content`" }),
      top_logprobs: z.number().int().min(0).max(20).nullish().openapi({ description: "With logprobs: this many most likely alternatives per token (0 to 20)" }),
      tools: refused(NO_TOOLS),
      tool_choice: refused(NO_TOOLS),
      functions: refused(NO_TOOLS),
      function_call: refused(NO_TOOLS),
      response_format: z
        .looseObject({ type: z.string() })
        .nullish()
        .refine((f) => f == null || f.type === "text", { error: "only {\"type\": \"text\"} is supported: this model cannot constrain its output to JSON" }),
      audio: refused("this model reads and writes text only"),
      modalities: z
        .array(z.string())
        .nullish()
        .refine((m) => m == null || m.every((x) => x === "text"), { error: "only [\"text\"] is supported: this model reads and writes text only" }),
    })
    .refine((b) => b.top_logprobs == null || b.logprobs === true, { error: "top_logprobs needs logprobs: true", path: ["top_logprobs"] })
    .openapi({ example: { model: "kjv-gpt", messages: [{ role: "user", content: "And God said" }], max_tokens: 32 } });
}

export const CompletionSchema = z
  .object({
    id: z.string(),
    object: z.literal("text_completion"),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(z.object({ text: z.string(), index: z.number().int(), logprobs: CompletionLogprobsSchema.nullable(), finish_reason: z.enum(["stop", "length"]) })),
    usage: UsageSchema,
  })
  .openapi("Completion", {
    example: {
      id: "cmpl-1",
      object: "text_completion",
      created: 1795000000,
      model: "kjv-gpt",
      choices: [{ text: " God created", index: 0, logprobs: null, finish_reason: "length" }],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    },
  });

export const ChatCompletionSchema = z
  .object({
    id: z.string(),
    object: z.literal("chat.completion"),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({ role: z.literal("assistant"), content: z.string(), refusal: z.null() }),
        logprobs: z.object({ content: z.array(TokenLogprobSchema) }).nullable(),
        finish_reason: z.enum(["stop", "length"]),
      }),
    ),
    usage: UsageSchema,
  })
  .openapi("ChatCompletion", {
    example: {
      id: "chatcmpl-1",
      object: "chat.completion",
      created: 1795000000,
      model: "kjv-gpt",
      choices: [{ index: 0, message: { role: "assistant", content: " and there was light.", refusal: null }, logprobs: null, finish_reason: "stop" }],
      usage: { prompt_tokens: 3, completion_tokens: 6, total_tokens: 9 },
    },
  });

/**
 * The models here are not chat-tuned, so a conversation becomes one prompt: the messages' texts, one per line,
 * and the reply continues it.
 */
export function chatPrompt(messages: ChatMessage[]): string {
  return messages
    .map((m) => (typeof m.content === "string" ? m.content : (m.content ?? []).map((p) => ("text" in p ? p.text : "")).join("")))
    .filter((t) => t.length > 0)
    .join("\n");
}
