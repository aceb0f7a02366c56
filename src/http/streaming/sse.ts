/** Server-sent events: a stream of events written as SSE frames, with keep-alive comments and cancellation. */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { requestLog } from "../env.ts";
import { internalError, problemBody, toProblemError, type Problem } from "../problem.ts";
import { disconnection, pump } from "./pump.ts";

/**
 * One server-sent event, the bytes Hono's `writeSSE` would write, for data on one line, which JSON always is
 * (it escapes line breaks). Written with `stream.write`, it skips `writeSSE`'s general handling on every token.
 */
export function sseEvent(data: string, event?: string): string {
  return event === undefined ? `data: ${data}\n\n` : `event: ${event}\ndata: ${data}\n\n`;
}

export type SSEOptions<T> = {
  keepAliveMs: number;
  /** The frames for one event ("" for none). */
  frame: (event: T) => string;
  /** The frame reporting a failure after streaming began (before it, failures are ordinary error responses). */
  errorFrame: (problem: Problem) => string;
  /** Frames before the first event, and after the last once the events have ended (OpenAI's usage chunk and `[DONE]`). */
  first?: string;
  last?: () => string;
};

/**
 * Starts the events (with a signal that aborts when the client goes away) and answers with them as SSE. Errors
 * from `start` (a refused request) are thrown, so they become ordinary error responses.
 */
export async function sseResponse<T>(c: Context, start: (signal: AbortSignal) => Promise<AsyncIterable<T>>, options: SSEOptions<T>): Promise<Response> {
  const client = disconnection(c.req.raw);
  const events = await start(client.signal);
  return streamSSE(c, async (sse) => {
    client.watch((listener) => sse.onAbort(listener));
    const sink = { get closed() { return sse.aborted; }, write: (data: string) => sse.write(data), keepAlive: () => sse.write(": keep-alive\n\n") };
    try {
      if (options.first) await sse.write(options.first);
      await pump(events, sink, options.keepAliveMs, options.frame);
    } catch (error) {
      requestLog(c)?.error({ err: error }, "generation failed while streaming");
      if (!sse.aborted) await sse.write(options.errorFrame(problemBody(c, toProblemError(error) ?? internalError())));
    }
    if (options.last && !sse.aborted) await sse.write(options.last());
  });
}
