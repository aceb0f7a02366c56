/**
 * HTTP-level helpers for the text-generation tests: a models folder with iris and the tiny LM (or kjv-gpt), a
 * real server over it, a strict parser of /v1/generate's event stream, an incremental SSE reader, and waiting
 * for /health to show the generation slots idle.
 */
import { expect } from "bun:test";
import { existsSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { MODELS_DIR } from "./fake-repository.ts";
import { tempDir } from "./models-dir.ts";
import { startServer, type RunningServer } from "./server.ts";

export const TINY_LM_DIR = join(import.meta.dir, "..", "fixtures", "tiny-lm");
export const KJV_GPT_DIR = join(MODELS_DIR, "kjv-gpt");

/** A temporary models folder: links to models/iris and the tiny LM fixture, plus `extra` (name → folder). */
export function textModelsDir(extra: Record<string, string> = {}, withTinyLm = true): string {
  const dir = tempDir("onnx-serve-text-models-");
  symlinkSync(join(MODELS_DIR, "iris"), join(dir, "iris"), "dir");
  if (withTinyLm) symlinkSync(TINY_LM_DIR, join(dir, "tiny-lm"), "dir");
  for (const [name, target] of Object.entries(extra)) symlinkSync(target, join(dir, name), "dir");
  return dir;
}

/** The real server (as `npm start`) over iris + tiny-lm; `env` overrides. */
export function startTextServer(env: Record<string, string> = {}): Promise<RunningServer> {
  return startServer({ MODELS_DIR: textModelsDir(), ...env });
}

export type TokenEvent = { text: string; index: number };
export type Usage = { prompt_tokens: number; completion_tokens: number; total_tokens: number };
export type DoneEvent = { finish_reason: "stop" | "length"; usage: Usage };
export type ParsedStream = { tokens: TokenEvent[]; done: DoneEvent; text: string };

const TOKEN_BLOCK = /^event: token\ndata: (\{.*\})$/;
const DONE_BLOCK = /^event: done\ndata: (\{.*\})$/;

/**
 * Parses a /v1/generate event stream strictly: only `token` blocks then exactly one `done` block, each exactly
 * `event: <name>\ndata: <json>\n\n`, the JSON exactly {text, index} / {finish_reason, usage{3 counts}} in that key
 * order, nothing before, between or after. With `comments`, `: keep-alive\n\n` blocks may appear anywhere.
 * Checks that re-serialising the parsed events gives back the very same bytes.
 */
export function parseGenerateStream(body: string, options: { comments?: boolean } = {}): ParsedStream {
  expect(body.endsWith("\n\n")).toBe(true);
  const blocks = body.slice(0, -2).split("\n\n");
  const tokens: TokenEvent[] = [];
  let done: DoneEvent | undefined;
  let rebuilt = "";
  for (const block of blocks) {
    if (options.comments && block === ": keep-alive") {
      rebuilt += ": keep-alive\n\n";
      continue;
    }
    if (done) throw new Error(`a block after the done event: ${JSON.stringify(block)}`);
    const token = TOKEN_BLOCK.exec(block);
    const end = DONE_BLOCK.exec(block);
    if (token) {
      const data = JSON.parse(token[1]!) as TokenEvent;
      expect(Object.keys(data)).toEqual(["text", "index"]);
      expect(typeof data.text).toBe("string");
      expect(data.text).not.toBe("");
      expect(Number.isInteger(data.index)).toBe(true);
      tokens.push(data);
      rebuilt += `event: token\ndata: ${JSON.stringify({ text: data.text, index: data.index })}\n\n`;
    } else if (end) {
      const data = JSON.parse(end[1]!) as DoneEvent;
      expect(Object.keys(data)).toEqual(["finish_reason", "usage"]);
      expect(["stop", "length"]).toContain(data.finish_reason);
      expect(Object.keys(data.usage)).toEqual(["prompt_tokens", "completion_tokens", "total_tokens"]);
      expect(data.usage.total_tokens).toBe(data.usage.prompt_tokens + data.usage.completion_tokens);
      done = data;
      rebuilt += `event: done\ndata: ${JSON.stringify({ finish_reason: data.finish_reason, usage: { ...data.usage } })}\n\n`;
    } else {
      throw new Error(`not a token or done block: ${JSON.stringify(block)}`);
    }
  }
  if (!done) throw new Error(`the stream has no done event: ${JSON.stringify(body)}`);
  expect(rebuilt).toBe(body);
  // Indices only grow, and each names a completion token that exists.
  tokens.forEach((t, i) => {
    if (i > 0) expect(t.index).toBeGreaterThan(tokens[i - 1]!.index);
    expect(t.index).toBeLessThan(done!.usage.completion_tokens);
  });
  return { tokens, done, text: tokens.map((t) => t.text).join("") };
}

/**
 * Reads an SSE response block by block as it arrives (a block is everything up to a blank line, without it):
 * `await next()` gives the next block or undefined at the end of the body.
 */
export function sseBlocks(response: Response) {
  if (!response.body) throw new Error("the response has no body");
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  let ended = false;
  return {
    /** Every byte read so far. */
    raw: "",
    async next(): Promise<string | undefined> {
      for (let reads = 0; reads < 100_000; reads++) {
        const at = buffered.indexOf("\n\n");
        if (at >= 0) {
          const block = buffered.slice(0, at);
          buffered = buffered.slice(at + 2);
          return block;
        }
        if (ended) {
          if (buffered !== "") throw new Error(`the stream ended inside a block: ${JSON.stringify(buffered)}`);
          return undefined;
        }
        const { value, done } = await reader.read();
        if (done) {
          ended = true;
          buffered += decoder.decode();
        } else {
          const text = decoder.decode(value, { stream: true });
          this.raw += text;
          buffered += text;
        }
      }
      throw new Error("no complete block after 100000 reads");
    },
    /** Reads to the end; returns every remaining block. */
    async rest(): Promise<string[]> {
      const blocks: string[] = [];
      for (let block = await this.next(); block !== undefined; block = await this.next()) blocks.push(block);
      return blocks;
    },
    cancel: () => reader.cancel(),
  };
}

/** The `data:` JSON of a `token` block, or undefined for any other block. */
export function tokenOf(block: string): TokenEvent | undefined {
  const m = TOKEN_BLOCK.exec(block);
  return m ? (JSON.parse(m[1]!) as TokenEvent) : undefined;
}

export type Generations = { active: number; queued: number };

/** The model's generation counts as GET /health reports them. */
export async function healthGenerations(url: string, model = "tiny-lm"): Promise<Generations> {
  const res = await fetch(`${url}/health`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { models: { name: string; generations?: Generations }[] };
  const entry = body.models.find((m) => m.name === model);
  if (!entry?.generations) throw new Error(`/health reports no generations for ${model}: ${JSON.stringify(body)}`);
  return entry.generations;
}

/**
 * Polls GET /health until the model's generations satisfy `ok`; fails after `polls` polls (a bound on the
 * loop, not a timing assertion). Returns what it saw last.
 */
export async function waitForGenerations(url: string, ok: (g: Generations) => boolean, model = "tiny-lm", polls = 1000): Promise<Generations> {
  let last: Generations | undefined;
  for (let i = 0; i < polls; i++) {
    last = await healthGenerations(url, model);
    if (ok(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`/health generations never reached the expected state; last: ${JSON.stringify(last)}`);
}

export const kjvGptAvailable = () => existsSync(join(KJV_GPT_DIR, "model.onnx")) && existsSync(join(KJV_GPT_DIR, "model.json"));
