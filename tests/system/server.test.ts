import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { realManifest } from "../helpers/fake-repository.ts";
import { addGatedIris, modelsDirWith, tempDir } from "../helpers/models-dir.ts";
import { launchServer, startServer, type LaunchedServer, type RunningServer } from "../helpers/server.ts";

const SETOSA = [5.1, 3.5, 1.4, 0.2];
const VERSICOLOR = [6.4, 3.2, 4.5, 1.5];
const VIRGINICA = [6.7, 3.0, 5.2, 2.3];
const WINE = {
  class_0: [14.1, 2.16, 2.3, 18, 105, 2.95, 3.32, 0.22, 2.38, 5.75, 1.25, 3.17, 1510],
  class_1: [12.37, 0.94, 1.36, 10.6, 88, 1.98, 0.57, 0.28, 0.42, 1.95, 1.05, 1.82, 520],
  class_2: [13.71, 5.65, 2.45, 20.5, 95, 1.68, 0.61, 0.52, 1.06, 7.7, 0.64, 1.74, 740],
};
const BODY_LIMIT = 4096;

type Prediction = { model: string; version: string; class: number; label: string; probabilities: number[] };

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });

async function json<T>(res: Response, status = 200): Promise<T> {
  const text = await res.text();
  expect({ status: res.status, text }).toEqual({ status, text: expect.any(String) });
  return JSON.parse(text) as T;
}

function expectDistribution(p: number[], labels: number) {
  expect(p).toHaveLength(labels);
  expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  for (const x of p) expect(x).toBeGreaterThanOrEqual(0);
}

describe("the server, started as `npm start` does", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ BODY_LIMIT_BYTES: String(BODY_LIMIT) });
  });
  afterAll(async () => {
    await server?.stop("SIGKILL");
  });

  test("logs where it listens, then each model, then 'models loaded'", async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(new URL(server.url).port).not.toBe("0");
    const startup = ["listening; loading models", "model ready", "models loaded"];
    const messages = server.logs.flatMap((line) => {
      try {
        const msg = (JSON.parse(line) as { msg?: string }).msg;
        return msg && startup.includes(msg) ? [msg] : [];
      } catch {
        return [];
      }
    });
    expect(messages).toEqual(["listening; loading models", "model ready", "model ready", "models loaded"]);
    expect(await server.waitForLog("listening; loading models")).toMatchObject({ level: 30, models: ["iris", "wine"] });
  });

  test("is ready once the models are loaded", async () => {
    const body = await json<{ status: string; models: { name: string; state: string }[] }>(await fetch(`${server.url}/readiness`));
    expect(body.status).toBe("ready");
    expect(body.models.map((m) => [m.name, m.state])).toEqual([
      ["iris", "ready"],
      ["wine", "ready"],
    ]);
  });

  test("classifies known iris rows through /v1/predict", async () => {
    for (const [row, cls, label] of [
      [SETOSA, 0, "setosa"],
      [VERSICOLOR, 1, "versicolor"],
      [VIRGINICA, 2, "virginica"],
    ] as const) {
      const body = await json<Prediction>(await post(`${server.url}/v1/predict`, { features: row }));
      expect(body).toMatchObject({ model: "iris", version: "1.0.0", class: cls, label });
      expectDistribution(body.probabilities, 3);
      expect(body.probabilities[cls]).toBeGreaterThan(0.9);
    }
  });

  test("/v2/predict and POST /predict with API-Version: 2 answer by label", async () => {
    const named = { sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 };
    const v2 = await json<{ label: string; confidence: number; probabilities: Record<string, number> }>(await post(`${server.url}/v2/predict`, named));
    expect(v2.label).toBe("virginica");
    expect(Object.keys(v2.probabilities)).toEqual(["setosa", "versicolor", "virginica"]);
    expect(v2.confidence).toBe(v2.probabilities.virginica!);
    expect(await json(await post(`${server.url}/predict`, named, { "API-Version": "2" }))).toEqual(v2);
    const v1 = await json<Prediction>(await post(`${server.url}/predict`, { features: VIRGINICA }));
    expect(v1.probabilities).toEqual(["setosa", "versicolor", "virginica"].map((l) => v2.probabilities[l]!));
  });

  test("classifies wine rows through /v1/models/wine/predict", async () => {
    for (const [label, row] of Object.entries(WINE)) {
      const body = await json<Prediction>(await post(`${server.url}/v1/models/wine/predict`, { features: row }));
      expect(body).toMatchObject({ model: "wine", version: "1.0.0", label });
      expectDistribution(body.probabilities, 3);
    }
  });

  test("a batch comes back in the order sent, with the same answers as single requests", async () => {
    const instances = [VIRGINICA, SETOSA, VERSICOLOR, SETOSA];
    const body = await json<{ model: string; predictions: Omit<Prediction, "model" | "version">[] }>(await post(`${server.url}/v1/predict/batch`, { instances }));
    expect(body.predictions.map((p) => p.label)).toEqual(["virginica", "setosa", "versicolor", "setosa"]);
    const single = await json<Prediction>(await post(`${server.url}/v1/predict`, { features: VERSICOLOR }));
    expect(body.predictions[2]).toEqual({ class: single.class, label: single.label, probabilities: single.probabilities });
  });

  test("50 concurrent requests each get their own answer", async () => {
    const rows = Array.from({ length: 50 }, (_, i) => [4.5 + (i % 10) * 0.3, 2.2 + (i % 7) * 0.2, 1 + (i % 25) * 0.24, 0.1 + (i % 12) * 0.2]);
    const expected: Prediction[] = [];
    for (const row of rows) expected.push(await json<Prediction>(await post(`${server.url}/v1/predict`, { features: row })));
    expect(new Set(expected.map((e) => e.probabilities.join())).size).toBe(50);
    expect(new Set(expected.map((e) => e.label)).size).toBe(3);

    const concurrent = await Promise.all(rows.map((row) => post(`${server.url}/v1/predict`, { features: row }).then((r) => json<Prediction>(r))));
    expect(concurrent).toEqual(expected);
  });

  test("errors are problem+json over HTTP too", async () => {
    const missing = await fetch(`${server.url}/v1/models/nope/predict`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ features: SETOSA }),
    });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toBe("application/problem+json");
    expect(await missing.json()).toMatchObject({ type: "/problems/model-not-found", status: 404, instance: "/v1/models/nope/predict" });

    const nan = await fetch(`${server.url}/v1/predict`, { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"features": [NaN, 1, 1, 1]}' });
    expect(nan.status).toBe(422);
    expect(((await nan.json()) as { errors: unknown }).errors).toEqual([{ path: "features.0", message: "NaN is not a number JSON allows; send a finite number" }]);
  });

  test("a body over BODY_LIMIT_BYTES is a 413, with or without Content-Length", async () => {
    const big = JSON.stringify({ features: SETOSA, padding: "x".repeat(BODY_LIMIT) });
    const sized = await fetch(`${server.url}/v1/predict`, { method: "POST", headers: { "Content-Type": "application/json" }, body: big });
    expect(sized.status).toBe(413);
    expect(sized.headers.get("content-type")).toBe("application/problem+json");

    const bytes = new TextEncoder().encode(big);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 1000) controller.enqueue(bytes.subarray(i, i + 1000));
        controller.close();
      },
    });
    const chunked = await fetch(`${server.url}/v1/predict`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: stream,
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(((await chunked.json()) as { detail: string }).detail).toBe(`The request body is larger than ${BODY_LIMIT} bytes.`);
  });
});

describe("start-up and shutdown", () => {
  const launched: LaunchedServer[] = [];
  const launch = (env: Record<string, string>) => {
    const server = launchServer(env);
    launched.push(server);
    return server;
  };
  afterAll(async () => {
    await Promise.all(launched.map((s) => s.stop("SIGKILL")));
  });

  test("an invalid PORT exits 1, naming PORT", async () => {
    const server = launch({ PORT: "abc" });
    expect(await server.exited).toBe(1);
    expect(server.logs.join("\n")).toContain('PORT="abc"');
  });

  test("an unknown DEFAULT_MODEL exits 1, naming DEFAULT_MODEL and the models found", async () => {
    const server = launch({ DEFAULT_MODEL: "nope" });
    expect(await server.exited).toBe(1);
    const output = server.logs.join("\n");
    expect(output).toContain("DEFAULT_MODEL=nope: no such model");
    expect(output).toContain("(found iris, wine)");
  });

  test("a missing MODELS_DIR exits 1, naming the folder", async () => {
    const missing = join(tempDir(), "no-models-here");
    const server = launch({ MODELS_DIR: missing });
    expect(await server.exited).toBe(1);
    expect(server.logs.join("\n")).toContain(`model folder ${missing} does not exist`);
  });

  test("while a model loads, /health answers and /readiness is 503; then ready; SIGTERM exits 0", async () => {
    const dir = modelsDirWith(["iris"]);
    const gate = addGatedIris(dir, "iris-gated");
    const server = launch({ MODELS_DIR: dir });
    const listening = await server.waitForLog("listening; loading models");
    const url = String(listening.url).replace(/\/$/, "");

    // iris-gated cannot finish loading until the gate opens: a loading window without sleeping.
    const health = await json<{ status: string; models: { name: string; state: string }[] }>(await fetch(`${url}/health`));
    expect(health.status).toBe("ok");
    expect(health.models.find((m) => m.name === "iris-gated")?.state).toBe("loading");
    const notReady = await fetch(`${url}/readiness`);
    expect(notReady.status).toBe(503);
    expect(notReady.headers.get("retry-after")).toBe("1");
    expect(notReady.headers.get("content-type")).toBe("application/problem+json");
    expect(((await notReady.json()) as { detail: string }).detail).toContain("iris-gated is loading");
    const early = await post(`${url}/v1/models/iris-gated/predict`, { features: SETOSA });
    expect(early.status).toBe(503);
    expect(early.headers.get("retry-after")).toBe("1");
    await early.body?.cancel();

    await gate.release();
    await server.waitForLog("models loaded");
    expect((await fetch(`${url}/readiness`)).status).toBe(200);
    const late = await json<Prediction>(await post(`${url}/v1/models/iris-gated/predict`, { features: SETOSA }));
    expect(late).toMatchObject({ model: "iris-gated", label: "setosa" });

    expect(await server.stop("SIGTERM")).toBe(0);
    expect(server.proc.signalCode).toBeNull();
    expect(server.logs.some((l) => l.includes('"msg":"shutting down"') && l.includes('"signal":"SIGTERM"'))).toBe(true);
  });

  test("a model that fails to load is reported; the others serve", async () => {
    const dir = modelsDirWith(["iris"]);
    mkdirSync(join(dir, "broken"));
    writeFileSync(join(dir, "broken", "model.json"), JSON.stringify({ ...realManifest("iris"), name: "broken" }));
    writeFileSync(join(dir, "broken", "model.onnx"), "this is not an ONNX graph");
    const server = launch({ MODELS_DIR: dir });
    const listening = await server.waitForLog("listening; loading models");
    const failed = await server.waitForLog("model failed to load");
    await server.waitForLog("models loaded");
    const url = String(listening.url).replace(/\/$/, "");
    // The log names the whole path; answers to clients name the file relative to the models folder.
    expect(failed).toMatchObject({ level: 50, model: "broken", err: { message: expect.stringContaining(join(dir, "broken", "model.onnx")) } });

    const readiness = await fetch(`${url}/readiness`);
    expect(readiness.status).toBe(503);
    const detail = ((await readiness.json()) as { detail: string }).detail;
    expect(detail).toStartWith("broken is failed (broken/model.onnx: ");
    expect(detail).not.toContain(dir);
    const broken = await post(`${url}/v1/models/broken/predict`, { features: SETOSA });
    expect(broken.status).toBe(503);
    expect(((await broken.json()) as { detail: string }).detail).toStartWith("model 'broken' failed to load: ");
    expect((await json<Prediction>(await post(`${url}/v1/predict`, { features: SETOSA }))).label).toBe("setosa");
  });

  test("SIGTERM while models are still loading exits 0", async () => {
    const dir = modelsDirWith(["iris"]);
    addGatedIris(dir, "iris-gated");
    const server = launch({ MODELS_DIR: dir });
    await server.waitForLog("listening; loading models");
    expect(await server.stop("SIGTERM")).toBe(0);
    expect(server.proc.signalCode).toBeNull();
  });
});
