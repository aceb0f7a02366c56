/**
 * /readiness is public, so anyone may flood it: it must stay true and cheap, never crowding out real requests nor
 * calling a busy model failed. The real server, a flood of probes from 32 clients, and real generations through it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTextServer } from "../helpers/generation.ts";
import type { RunningServer } from "../helpers/server.ts";

const TIMEOUT = 60_000;

describe("a flood of /readiness while generations run", () => {
  let server: RunningServer;
  beforeAll(async () => {
    // Few slots and a short queue, so that probes taking slots or places would crowd the generations out.
    server = await startTextServer({ GENERATION_MAX_STREAMS: "4", GENERATION_MAX_QUEUE: "8" });
  }, TIMEOUT);
  afterAll(async () => {
    await server?.stop("SIGKILL");
  }, TIMEOUT);

  test("every generation completes and every probe says ready", async () => {
    const probes: { status: number; body: string }[] = [];
    let flooding = true;
    const prober = async () => {
      while (flooding) {
        const res = await fetch(`${server.url}/readiness`);
        probes.push({ status: res.status, body: await res.text() });
      }
    };
    const flood = Array.from({ length: 32 }, prober);
    // The flood is on before the generations come, and goes on until they have all ended.
    while (probes.length < 200) await fetch(`${server.url}/health`).then((r) => r.arrayBuffer());
    const generations = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        fetch(`${server.url}/v1/generate`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ prompt: "And it came to pass", max_tokens: 30, temperature: 1, seed: i, ignore_eos: true }),
        }).then(async (res) => ({ status: res.status, body: (await res.json()) as { usage?: { completion_tokens: number } } })),
      ),
    );
    flooding = false;
    await Promise.all(flood);

    expect(generations.map((g) => g.status)).toEqual(Array(12).fill(200));
    expect(generations.map((g) => g.body.usage?.completion_tokens)).toEqual(Array(12).fill(30));
    expect(probes.filter((p) => p.status !== 200)).toEqual([]);
    expect(probes.length).toBeGreaterThan(200);
  }, TIMEOUT);
});
