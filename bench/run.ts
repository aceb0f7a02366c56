/**
 * npm run bench: every benchmark, each printing its figures beside a baseline measured in the same run.
 * Not a test: it never fails on a figure. Needs wrk (Debian: apt-get install wrk).
 * BENCH_SECONDS (default 5), BENCH_CONNECTIONS (default 32) and BENCH_ROUNDS (default 3) tune the HTTP runs;
 * BENCH_ONLY=predict|middleware|image|generate picks one; BENCH_VERBOSE=1 prints every round of the generation benchmark.
 */
import { cpus } from "node:os";
import { benchGenerate } from "./generate.ts";
import { benchImage } from "./image.ts";
import { benchMiddleware } from "./middleware.ts";
import { CONNECTIONS, DURATION, requireWrk } from "./lib.ts";
import { benchPredict } from "./predict.ts";

const only = process.env.BENCH_ONLY;
console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, bun ${Bun.version}; wrk -t1 -c${CONNECTIONS} -d${DURATION}s\n`);
if (!only || only === "predict") {
  requireWrk();
  console.log("== predictions ==");
  await benchPredict();
}
if (!only || only === "middleware") {
  console.log("\n== middleware, in-process ==");
  await benchMiddleware();
}
if (!only || only === "image") {
  requireWrk();
  console.log("\n== image classification ==");
  await benchImage();
}
if (!only || only === "generate") {
  console.log("\n== text generation ==");
  await benchGenerate();
}
process.exit(0);
