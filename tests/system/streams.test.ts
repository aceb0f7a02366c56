/**
 * Long-lived generation streams over HTTP, against the real server: keep-alive comments while a stream waits
 * for a slot, and a client that goes away mid-stream (the slot is freed, the other streams are unaffected).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ModelRepository } from "../../src/engine/registry/repository.ts";
import type { TextGenerator } from "../../src/engine/tasks/text/generator.ts";
import { testApp } from "../helpers/app.ts";
import { statsReach } from "../helpers/text-model.ts";
import { engineOptions } from "../helpers/engine.ts";
import { healthGenerations, parseGenerateStream, sseBlocks, startTextServer, textModelsDir, tokenOf, waitForGenerations } from "../helpers/generation.ts";
import type { RunningServer } from "../helpers/server.ts";

// Bounds, not measurements: two shared cores may be busy with other work (the hooks start real servers).
const TIMEOUT = 120_000;
const HOOK_TIMEOUT = 60_000;

const url = (server: RunningServer, params: Record<string, string | number>) =>
  `${server.url}/v1/generate?${new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]))}`;

// Greedy from this 2-token prompt never meets EOS in the tiny LM: always the full 60 tokens (2 + 60 ≤ 64).
const LONG = { prompt: "In", max_tokens: 60, temperature: 0 };

describe("keep-alive comments while a stream waits in the queue", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startTextServer({ SSE_KEEPALIVE_MS: "100", GENERATION_MAX_STREAMS: "1", GENERATION_MAX_QUEUE: "200" });
  }, HOOK_TIMEOUT);
  afterAll(async () => {
    await server?.stop("SIGKILL");
  }, HOOK_TIMEOUT);

  /**
   * Sends `ahead` long greedy streams for the single slot, waits until /health shows at least half of them queued
   * (the server sends a stream's headers only with its first bytes, so those cannot tell), then sends one more
   * stream, which waits behind them. Returns its body and the others'.
   */
  async function queueBehind(ahead: number) {
    let settled = 0;
    const fillers = Array.from({ length: ahead }, () =>
      fetch(url(server, LONG))
        .then((r) => r.text())
        .finally(() => settled++),
    );
    // (Should they all finish first, on a very fast machine, the last stream does not wait and the caller deepens the queue.)
    await waitForGenerations(server.url, (g) => g.queued >= ahead / 2 || settled === ahead);
    const res = await fetch(url(server, { prompt: "And God said", max_tokens: 8, temperature: 0 }));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const body = await res.text();
    return { body, fillers: await Promise.all(fillers) };
  }

  test("the waiting stream gets `: keep-alive` comments before its first token, and is well-formed around them", async () => {
    // The wait must outlast 100 ms; how long 60 tokens take depends on the machine, so the queue deepens until
    // the waiting stream saw a keep-alive (a bounded number of tries, not a timing assertion).
    let result: Awaited<ReturnType<typeof queueBehind>> | undefined;
    for (const ahead of [8, 24, 64]) {
      result = await queueBehind(ahead);
      if (result.body.startsWith(": keep-alive\n\n")) break;
    }
    const { body, fillers } = result!;
    expect(body.startsWith(": keep-alive\n\n")).toBe(true);
    const blocks = body.slice(0, -2).split("\n\n");
    const firstToken = blocks.findIndex((b) => b.startsWith("event: token"));
    expect(firstToken).toBeGreaterThan(0);
    // Everything before the first token is a keep-alive comment, byte for byte.
    expect(blocks.slice(0, firstToken).every((b) => b === ": keep-alive")).toBe(true);
    // With the comments allowed, the stream parses strictly, and without them it is an ordinary stream.
    const parsed = parseGenerateStream(body, { comments: true });
    expect(parsed.done).toMatchObject({ finish_reason: "length", usage: { completion_tokens: 8 } });
    const withoutComments = blocks.filter((b) => b !== ": keep-alive").join("\n\n") + "\n\n";
    expect(parseGenerateStream(withoutComments).text).toBe(parsed.text);
    // The streams ahead of it all ran to their end.
    for (const filler of fillers) expect(parseGenerateStream(filler, { comments: true }).done.usage.completion_tokens).toBe(60);
    expect(await healthGenerations(server.url)).toEqual({ active: 0, queued: 0 });
  }, TIMEOUT);
});

describe("a client that aborts mid-stream", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startTextServer({ GENERATION_MAX_STREAMS: "4" });
  }, HOOK_TIMEOUT);
  afterAll(async () => {
    await server?.stop("SIGKILL");
  }, HOOK_TIMEOUT);

  test("frees its slot (GET /health shows none active) while other streams continue and finish normally", async () => {
    const others: Record<string, string | number>[] = [
      { prompt: "And God said", max_tokens: 50, temperature: 0 },
      { prompt: "Jesus wept", max_tokens: 40, temperature: 1, seed: 3 },
    ];
    // What each of the others gives when left alone.
    const alone = await Promise.all(others.map((p) => fetch(url(server, p)).then((r) => r.text())));
    expect(await healthGenerations(server.url)).toEqual({ active: 0, queued: 0 });

    // The others start first; the doomed stream starts once they stream.
    const running = await Promise.all(others.map((p) => fetch(url(server, p)).then((res) => sseBlocks(res))));
    const firsts = await Promise.all(running.map((s) => s.next()));
    for (const block of firsts) expect(tokenOf(block!)).toMatchObject({ index: 0 });

    const controller = new AbortController();
    const doomed = await fetch(url(server, LONG), { signal: controller.signal });
    expect(doomed.status).toBe(200);
    const doomedStream = sseBlocks(doomed);
    expect(tokenOf((await doomedStream.next())!)).toMatchObject({ index: 0 });
    controller.abort();
    // Blocks read before the abort may still be buffered; after them, reading fails.
    let drained = 0;
    await expect(
      (async () => {
        while ((await doomedStream.next()) !== undefined && drained++ < 100);
      })(),
    ).rejects.toThrow();

    // The others end as if nothing had happened: byte for byte what they give alone.
    const rests = await Promise.all(running.map((s) => s.rest()));
    running.forEach((_, i) => {
      const body = [firsts[i]!, ...rests[i]!].join("\n\n") + "\n\n";
      expect(body).toBe(alone[i]!);
      parseGenerateStream(body);
    });

    // The aborted stream's slot is free: nothing active, nothing queued.
    expect(await waitForGenerations(server.url, (g) => g.active === 0 && g.queued === 0)).toEqual({ active: 0, queued: 0 });
    // The server logged no failure for it, and still serves.
    expect(server.logs.filter((l) => l.includes("generation failed"))).toEqual([]);
    const after = await fetch(url(server, { prompt: "In", max_tokens: 4, temperature: 0 })).then((r) => r.text());
    expect(parseGenerateStream(after).done.usage.completion_tokens).toBe(4);
  }, TIMEOUT);

  test("many aborted streams, each after its first token, leave every slot free", async () => {
    const controllers = Array.from({ length: 6 }, () => new AbortController());
    const streams = await Promise.all(controllers.map((c, i) => fetch(url(server, { ...LONG, temperature: 1, seed: i }), { signal: c.signal }).then(sseBlocks)));
    // Six streams, four slots: two wait; each is aborted once it has streamed a token.
    await Promise.all(
      streams.map(async (s, i) => {
        const first = await s.next();
        expect(first === undefined ? undefined : tokenOf(first)).toMatchObject({ index: 0 });
        controllers[i]!.abort();
      }),
    );
    expect(await waitForGenerations(server.url, (g) => g.active === 0 && g.queued === 0)).toEqual({ active: 0, queued: 0 });
  }, TIMEOUT);
});

/**
 * The app as the server builds it, over its own real ModelRepository of the text models (its own, so that one
 * test's decode steps never show in another's counts): generations of at most 60 tokens, `maxStreams` at once.
 * Built before the enclosing describe's tests and closed after them; read its fields inside the tests.
 */
function inProcessApp(maxStreams: number, env: Record<string, string> = {}) {
  const built = {} as { repository: ModelRepository; app: ReturnType<typeof testApp>["app"] };
  beforeAll(async () => {
    built.repository = new ModelRepository(textModelsDir(), engineOptions({ generation: { maxStreams, maxQueue: 16, maxGenerationMs: 60_000 } }));
    await built.repository.loadAll();
    built.app = testApp({ catalog: built.repository, env: { MAX_TOKENS: "60", ...env } }).app;
  }, HOOK_TIMEOUT);
  afterAll(async () => {
    await built.repository?.close();
  }, HOOK_TIMEOUT);
  return built;
}

/**
 * Over HTTP a cancelled tiny-LM stream and one that ran out its 60 tokens look alike once over (/health shows
 * counts, not work done). In process, the generator's decode-step counter tells them apart: the app as the
 * server builds it, over a real ModelRepository, with the response body cancelled after its first token.
 */
describe("a client that cancels after the first token (in process, counting decode steps)", () => {
  const built = inProcessApp(4);

  test("ends the generation long before its 60 tokens: fewer decode steps run than it would need", async () => {
    const generator = built.repository.get("tiny-lm") as TextGenerator;
    // A step is ~1 ms, so the cancellation wins by far; a few tries absorb a badly stalled machine, while a server
    // that never cancels fails every one of them.
    const used: number[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const before = generator.stats().steps;
      const res = await built.app.request(`/v1/generate?${new URLSearchParams({ prompt: "In", max_tokens: "60", temperature: "0" })}`);
      expect(res.status).toBe(200);
      const stream = sseBlocks(res);
      expect(tokenOf((await stream.next())!)).toMatchObject({ index: 0 });
      await stream.cancel();
      await statsReach(generator, (s) => s.active === 0 && s.queued === 0);
      used.push(generator.stats().steps - before);
      if (used.at(-1)! < 59) break;
    }
    // 60 tokens = the prefill's token + 59 decode steps.
    expect(used.at(-1)!).toBeLessThan(59);
  }, TIMEOUT);
});

describe("a client that leaves while its stream still waits for a slot (in process, counting decode steps)", () => {
  // One slot: a second stream waits in the queue until the first has run its 60 tokens.
  const built = inProcessApp(1, { SSE_KEEPALIVE_MS: "60000" });

  test("is dropped from the queue: no decode step runs for it, though no event (not even a keep-alive) was due", async () => {
    const generator = built.repository.get("tiny-lm") as TextGenerator;
    const query = `/v1/generate?${new URLSearchParams({ prompt: "In", max_tokens: "60", temperature: "0" })}`;
    const before = generator.stats().steps;
    // Three streams ahead (one running, two queued) keep the last one waiting for some 180 steps. A response
    // comes once the worker has accepted its generation, so the last one is in the queue when it is cancelled.
    const ahead = await Promise.all([0, 1, 2].map(() => built.app.request(query)));
    const finished = Promise.all(ahead.map((res) => res.text()));
    const waiting = await built.app.request(query);
    expect(waiting.status).toBe(200);
    await waiting.body!.cancel();
    expect((await finished).map((text) => parseGenerateStream(text).done.usage.completion_tokens)).toEqual([60, 60, 60]);
    await statsReach(generator, (s) => s.active === 0 && s.queued === 0);
    // Each of the three: its prefill's token and 59 decode steps. The one that left took none.
    expect(generator.stats().steps - before).toBe(3 * 59);
  }, TIMEOUT);
});
