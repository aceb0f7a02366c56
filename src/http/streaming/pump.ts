/** Server-sent events shared by the generation routes: one stream of engine events, with keep-alive comments. */
import type { SSEStreamingApi } from "hono/streaming";
import type { GenerationEvent } from "../../engine/tasks/text/generator.ts";

/**
 * Feeds each generation event to `onEvent`, writing an SSE comment (`: keep-alive`) whenever `keepAliveMs`
 * pass without one, so idle timeouts (Bun's 10 s, proxies') do not cut a stream that waits for a slot or a
 * slow token. Returns when the events end or the client has gone.
 */
export async function pumpEvents(
  events: AsyncIterable<GenerationEvent>,
  stream: SSEStreamingApi,
  keepAliveMs: number,
  onEvent: (event: GenerationEvent) => Promise<unknown>,
): Promise<void> {
  const iterator = events[Symbol.asyncIterator]();
  // One timer for the whole stream, pushed back after every event: cheaper per token than a timer each.
  const keepAlive = setInterval(() => void stream.write(": keep-alive\n\n").catch(() => {}), keepAliveMs);
  try {
    // A client that goes away while no event is due is noticed through the engine: disconnection() cancels
    // the generation, which ends these events.
    while (!stream.aborted) {
      const result = await iterator.next();
      if (result.done) return;
      await onEvent(result.value);
      keepAlive.refresh();
    }
  } finally {
    clearInterval(keepAlive);
    // Client gone or an error: ending the iteration cancels the generation and frees its slot.
    await iterator.return?.();
  }
}

/**
 * An abort signal for the engine that fires when the client goes away: the request's own signal covers a
 * disconnect before streaming starts, `stream.onAbort` (see `watch`) one during it.
 */
export function disconnection(request: Request) {
  const controller = new AbortController();
  const abort = () => controller.abort(new Error("client disconnected"));
  request.signal.addEventListener("abort", abort, { once: true });
  return { signal: controller.signal, watch: (stream: SSEStreamingApi) => stream.onAbort(abort) };
}

/**
 * One server-sent event, the bytes Hono's `writeSSE` would write, for data on one line, which JSON always is
 * (it escapes line breaks). Written with `stream.write`, it skips `writeSSE`'s general handling on every token.
 */
export function sseEvent(data: string, event?: string): string {
  return event === undefined ? `data: ${data}\n\n` : `event: ${event}\ndata: ${data}\n\n`;
}
