/**
 * Prediction throughput: POST /v1/predict with wrk at 32 connections, against the ceiling (a bare Bun.serve
 * answering a constant body) and against the same route with no middleware, all in one run.
 */
import { printTable, startServer, unlimitedKey, wrk, type Result } from "./lib.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

export async function benchPredict() {
  const body = JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] });
  const measure = async (name: string, script: string, env: Record<string, string>, path: string, headers: Record<string, string> = {}, ready?: string) => {
    const server = await startServer(script, env, ready ?? "/readiness", ready !== undefined);
    try {
      wrk("warm-up", server.url + path, body, headers);
      return wrk(name, server.url + path, body, headers);
    } finally {
      server.stop();
    }
  };

  // A key whose bucket never empties, so the limiter does all its work without refusing.
  const { key, file: keysFile } = unlimitedKey();
  const unlimited = { RATE_LIMIT_CAPACITY: "1000000000", RATE_LIMIT_REFILL_PER_SECOND: "1000000000" };

  const targets: [name: string, script: string, env: Record<string, string>, path: string, headers?: Record<string, string>, ready?: string][] = [
    ["bare Bun.serve (ceiling)", "bench/bare-server.ts", {}, "/", {}, "/"],
    ["/v1/predict, no middleware", "bench/no-middleware-server.ts", {}, "/v1/predict", {}, "/"],
    // As `npm start` runs (no keys, access log at info), but with limits wrk cannot reach.
    ["/v1/predict, quick-start config", "src/main/index.ts", { ...unlimited, LOG_LEVEL: "info" }, "/v1/predict"],
    ["/v1/predict, key + all middleware", "src/main/index.ts", { API_KEYS_FILE: keysFile, LOG_LEVEL: "info" }, "/v1/predict", { "X-API-Key": key }],
  ];
  // Rounds over all targets, each target's median run kept: this machine's speed drifts over minutes, and
  // interleaving spreads a slow spell over every target instead of one.
  const runs: Result[][] = targets.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, target] of targets.entries()) runs[i]!.push(await measure(...target));
  }
  const results = runs.map((r) => r.sort((a, b) => a.rps - b.rps)[Math.floor(r.length / 2)]!);

  const [ceiling, bare, , full] = results as [Result, Result, Result, Result];
  printTable(
    ["target (median of " + ROUNDS + " interleaved runs)", "req/s", "p50 ms", "p99 ms", "errors", "of ceiling"],
    results.map((r) => [r.name, r.rps.toFixed(0), r.p50.toFixed(2), r.p99.toFixed(2), r.errors, `${((100 * r.rps) / ceiling.rps).toFixed(1)}%`]),
  );
  const quick = results[2]!;
  console.log(`\n/v1/predict (quick start): ${((100 * quick.rps) / ceiling.rps).toFixed(1)}% of the ceiling (target >= 40%), p99 ${quick.p99.toFixed(2)} ms (target < 5 ms), ${quick.errors} errors`);
  console.log(
    `middleware cost: ${(100 * (1 - full.rps / bare.rps)).toFixed(1)}% of throughput (target <= 15%); ` +
      `with key and limits: ${((100 * full.rps) / ceiling.rps).toFixed(1)}% of the ceiling (target >= 35%)`,
  );
}
