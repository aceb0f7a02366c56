/**
 * Moving a generation's events to a client over any streaming transport (SSE today): keep-alives while no event
 * is due, and cancellation when the client goes away, so its generation frees its slot.
 */

/** Where events go: a transport's view of one client. */
export type Sink = {
  /** The client has gone. */
  readonly closed: boolean;
  /** Writes one piece of the stream. */
  write(data: string): Promise<unknown>;
  /** Writes whatever keeps an idle connection open (an SSE comment, say). */
  keepAlive(): Promise<unknown>;
};

/**
 * Writes `frame(event)` for each event, and a keep-alive whenever `keepAliveMs` pass without one, so idle
 * timeouts (Bun's 10 s, proxies') do not cut a stream that waits for a slot or a slow token. Returns when the
 * events end or the client has gone; ending the iteration early cancels the generation behind it.
 */
export async function pump<T>(events: AsyncIterable<T>, sink: Sink, keepAliveMs: number, frame: (event: T) => string): Promise<void> {
  const iterator = events[Symbol.asyncIterator]();
  // One timer for the whole stream, pushed back after every event: cheaper per token than a timer each.
  const keepAlive = setInterval(() => void sink.keepAlive().catch(() => {}), keepAliveMs);
  try {
    // A client that goes away while no event is due is noticed through the engine: the disconnection signal
    // cancels the generation, which ends these events.
    while (!sink.closed) {
      const result = await iterator.next();
      if (result.done) return;
      const data = frame(result.value);
      if (data) await sink.write(data);
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
 * disconnect before streaming starts; `watch` adds the transport's own notice of one during it.
 */
export function disconnection(request: Request) {
  const controller = new AbortController();
  const abort = () => controller.abort(new Error("client disconnected"));
  request.signal.addEventListener("abort", abort, { once: true });
  return { signal: controller.signal, watch: (onAbort: (listener: () => void) => void) => onAbort(abort) };
}

/** Several event streams as one, each event tagged with its stream's index, in arrival order. */
export async function* merge<T>(streams: AsyncIterable<T>[]): AsyncIterable<{ index: number; event: T }> {
  const iterators = streams.map((s) => s[Symbol.asyncIterator]());
  const next = (index: number) => iterators[index]!.next().then((result) => ({ index, result }));
  const pending = new Map(iterators.map((_, i) => [i, next(i)]));
  try {
    while (pending.size > 0) {
      const { index, result } = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(index);
        continue;
      }
      pending.set(index, next(index));
      yield { index, event: result.value };
    }
  } finally {
    // Leaving early (client gone, an error) ends every stream, so each generation frees its slot.
    await Promise.all(iterators.map((it) => it.return?.()));
  }
}
