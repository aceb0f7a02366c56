/**
 * The same app on Node.js: `npm run build:node` bundles it (and both worker threads) with bun build, and
 * `node dist/node.js` serves it through @hono/node-server. Predictions, image uploads (sharp's native module),
 * model uploads, generation and the docs over HTTP.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { modelsDirCopy } from "../helpers/models-dir.ts";
import { startServer, type RunningServer } from "../helpers/server.ts";

const ROOT = join(import.meta.dir, "..", "..");
let server: RunningServer;

beforeAll(async () => {
  const build = Bun.spawnSync(["npm", "run", "build:node"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`npm run build:node failed:\n${build.stderr.toString()}`);
  // Copies, not links: the test uploads a model into this folder.
  const models = modelsDirCopy(["iris", "digits"]);
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

test("classifies an uploaded picture: sharp decodes it under Node.js", async () => {
  const form = new FormData();
  form.append("file", new Blob([readFileSync(join(ROOT, "tests", "fixtures", "images", "digit-7.png"))], { type: "image/png" }), "digit-7.png");
  const res = await fetch(`${server.url}/v1/classify?top_k=2`, { method: "POST", body: form });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { model: string; filename: string; label: string; top_k: unknown[]; width: number };
  expect(body).toMatchObject({ model: "digits", filename: "digit-7.png", label: "7", width: 28 });
  expect(body.top_k).toHaveLength(2);
});

test("takes a model upload and serves it at once", async () => {
  const manifest = readFileSync(join(ROOT, "models", "iris", "model.json"), "utf8").replace('"name": "iris"', '"name": "flowers"');
  const form = new FormData();
  form.append("model.onnx", new Blob([readFileSync(join(ROOT, "models", "iris", "model.onnx"))]), "model.onnx");
  form.append("model.json", new Blob([manifest], { type: "application/json" }), "model.json");
  const created = await fetch(`${server.url}/v1/models`, { method: "POST", body: form });
  expect(created.status).toBe(201);
  expect(created.headers.get("location")).toBe("/v1/models/flowers");
  const res = await fetch(`${server.url}/v1/models/flowers/predict`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ features: [6.7, 3.0, 5.2, 2.3] }) });
  expect(await res.json()).toMatchObject({ model: "flowers", version: "1.0.0", label: "virginica" });
});
