/**
 * The middleware's own cost, in-process: POST /v1/predict through `app.fetch` with no HTTP server, so the
 * figures are free of the socket work and of the load generator sharing the cores. Variants are interleaved
 * (six runs each after a warm-up run) and their medians reported beside the route alone.
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import { timing } from "hono/timing";
import { createApp } from "../src/main/app.ts";
import { engineOptions } from "../src/main/boot.ts";
import { loadConfig } from "../src/main/config.ts";
import { ModelRepository } from "../src/engine/registry/repository.ts";
import { createLogger } from "../src/observability/logger.ts";
import { problemErrorHandler } from "../src/http/problem.ts";
import { loadKeyStore } from "../src/auth/key-store.ts";
import { MemoryStore } from "../src/ratelimit/memory-store.ts";
import { predictRouter } from "../src/http/routes/predict/index.ts";
import { printTable, unlimitedKey } from "./lib.ts";

const REQUESTS = 19_200;
const IN_FLIGHT = 32;
const RUNS = 6;

type Fetch = (request: Request) => Response | Promise<Response>;

export async function benchMiddleware() {
  // Limits no run can reach, so the limiter does all its work without refusing.
  const config = { ...loadConfig(), RATE_LIMIT_CAPACITY: 1e9, RATE_LIMIT_REFILL_PER_SECOND: 1e9 };
  const repository = new ModelRepository(config.MODELS_DIR, engineOptions(config));
  await repository.loadAll();
  try {
    const quiet = createLogger("warn");
    // Access lines formatted as in production, then dropped: the cost is the logger's, not the terminal's.
    const accessLines = createLogger("info", { write() {} });
    const { key, file: keysFile } = unlimitedKey();

    const route = (app: Hono) => app.route("/", predictRouter(repository, config.DEFAULT_MODEL, config.MAX_BATCH_INSTANCES)).onError(problemErrorHandler(quiet));
    const app = (logger: typeof quiet, keys?: ReturnType<typeof loadKeyStore>) =>
      createApp({ config, catalog: repository, logger, keys, rateLimitStore: new MemoryStore(), clientAddress: () => "127.0.0.1" });
    const variants: [name: string, fetch: Fetch, headers: Record<string, string>][] = [
      ["route and engine only (no middleware)", route(new Hono()).fetch, {}],
      ["+ Hono's requestId, timing, secureHeaders, cors", route(new Hono().use(requestId(), timing(), secureHeaders(), cors())).fetch, {}],
      ["+ all middleware, authentication off, log at warn", app(quiet).fetch, {}],
      ["+ all middleware, API key, access line", app(accessLines, loadKeyStore(keysFile)).fetch, { "X-API-Key": key }],
    ];

    const body = JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] });
    const run = async ([name, fetch, headers]: (typeof variants)[number]) => {
      const one = async () => {
        const request = new Request("http://localhost/v1/predict", {
          method: "POST",
          headers: { "Content-Type": "application/json", "Content-Length": String(body.length), ...headers },
          body,
        });
        const response = await fetch(request);
        if (response.status !== 200) throw new Error(`${name}: ${response.status} ${await response.text()}`);
        await response.arrayBuffer();
      };
      const start = performance.now();
      // IN_FLIGHT requests at a time, as concurrent clients send them, so the engine batches as it does under load.
      await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
        for (let i = 0; i < REQUESTS / IN_FLIGHT; i++) await one();
      }));
      return ((performance.now() - start) * 1000) / REQUESTS;
    };
    const micros: number[][] = variants.map(() => []);
    for (let round = 0; round <= RUNS; round++) {
      for (const [i, variant] of variants.entries()) {
        const us = await run(variant);
        if (round > 0) micros[i]!.push(us); // round 0 warms up
      }
    }
    const medians = micros.map((m) => m.sort((a, b) => a - b)[m.length >> 1]!);
    const base = medians[0]!;
    printTable(
      [`in-process, ${IN_FLIGHT} in flight (median of ${RUNS} interleaved runs)`, "µs/request", "added"],
      variants.map(([name], i) => [name, medians[i]!.toFixed(1), i === 0 ? "" : `+${(medians[i]! - base).toFixed(1)} µs`]),
    );
  } finally {
    await repository.close();
  }
}
