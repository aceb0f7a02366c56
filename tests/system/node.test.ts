/**
 * The same app on Node.js: `npm run build:node` bundles it (and both worker threads) with bun build, and
 * `node dist/node.js` serves it through @hono/node-server. Predictions, generation and the docs over HTTP.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { symlinkSync } from "node:fs";
import { join } from "node:path";
import { modelsDirWith } from "../helpers/models-dir.ts";
import { startServer, type RunningServer } from "../helpers/server.ts";

const ROOT = join(import.meta.dir, "..", "..");
let server: RunningServer;

beforeAll(async () => {
  const build = Bun.spawnSync(["npm", "run", "build:node"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`npm run build:node failed:\n${build.stderr.toString()}`);
  const models = modelsDirWith(["iris"]);
  // The tiny language model too, so the generation worker's bundle is exercised.
  symlinkSync(join(ROOT, "tests", "fixtures", "tiny-lm"), join(models, "tiny-lm"));
  server = await startServer({ MODELS_DIR: models }, ["node", "dist/node.js"]);
}, 60_000);

afterAll(async () => {
  await server?.stop("SIGKILL");
});

test("predicts iris over HTTP", async () => {
  const res = await fetch(`${server.url}/v1/predict`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] }) });
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ model: "iris", class: 0, label: "setosa" });
  expect(res.headers.get("x-request-id")).toBeTruthy();
});

test("streams generated tokens over SSE and serves the docs and the playground", async () => {
  const res = await fetch(`${server.url}/v1/generate?prompt=And%20God%20said&max_tokens=5&temperature=0`);
  expect(res.headers.get("content-type")).toStartWith("text/event-stream");
  const body = await res.text();
  expect(body).toContain("event: token\n");
  expect(body).toMatch(/event: done\ndata: \{"finish_reason":"length","usage":\{"prompt_tokens":\d+,"completion_tokens":5,/);
  expect(((await fetch(`${server.url}/doc`).then((r) => r.json())) as { openapi: string }).openapi).toBe("3.1.0");
  expect(await fetch(`${server.url}/`).then((r) => r.text())).toContain("<title>onnx-serve playground</title>");
});
