import { beforeEach, describe, expect, test } from "bun:test";
import { Writable } from "node:stream";
import { EngineError } from "../../src/engine/errors.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { FakeRepository } from "../helpers/fake-repository.ts";
import { expectProblem, makeApp, postJson } from "../helpers/http.ts";

const SETOSA = [5.1, 3.5, 1.4, 0.2];
const LIMIT = 200;

const { app, repository } = makeApp({ BODY_LIMIT_BYTES: String(LIMIT) });
beforeEach(() => repository.reset());

const nonFinite = (word: string) => `${word} is not a number JSON allows; send a finite number`;

/** A JSON body for /v1/predict of exactly `bytes` bytes (padded with spaces). */
function bodyOfSize(bytes: number): string {
  const json = JSON.stringify({ features: SETOSA });
  return json.slice(0, -1) + " ".repeat(bytes - json.length) + "}";
}

/** A request whose body is streamed, so it carries no Content-Length. */
function streamedRequest(path: string, text: string): Request {
  const bytes = new TextEncoder().encode(text);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      // Two chunks: the limit must hold across chunks.
      controller.enqueue(bytes.subarray(0, 100));
      controller.enqueue(bytes.subarray(100));
      controller.close();
    },
  });
  return new Request(`http://localhost${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body, duplex: "half" } as RequestInit);
}

describe("unknown routes", () => {
  test("an unknown path is a 404 problem", async () => {
    const body = await expectProblem(await app.request("/nope"), 404, "/nope");
    expect(body).toEqual({ type: "about:blank", title: "Not Found", status: 404, detail: "No route for GET /nope.", instance: "/nope" });
  });

  test("a known path with another method is a 404 problem", async () => {
    const body = await expectProblem(await app.request("/v1/predict"), 404, "/v1/predict");
    expect(body.detail).toBe("No route for GET /v1/predict.");
  });
});

describe("bodies that are not acceptable JSON", () => {
  test("malformed JSON is a 400 problem", async () => {
    const body = await expectProblem(await postJson(app, "/v1/predict", '{"features": [5.1, 3.5'), 400, "/v1/predict");
    expect(body.type).toBe("/problems/malformed-json");
    expect(body.title).toBe("Malformed JSON");
    expect(body.detail).toStartWith("The request body is not valid JSON: ");
    expect(repository.model("iris").calls).toEqual([]);
  });

  const EMPTY = {
    type: "/problems/empty-body",
    title: "Empty body",
    status: 400,
    detail: "The request body is empty; send a JSON object with Content-Type: application/json.",
  };

  test("an empty body with Content-Type: application/json is a 400 problem", async () => {
    const body = await expectProblem(await postJson(app, "/v1/predict", ""), 400, "/v1/predict");
    expect(body).toEqual({ ...EMPTY, instance: "/v1/predict" });
  });

  test("a whitespace body is the same 400", async () => {
    const body = await expectProblem(await postJson(app, "/v2/predict", "  \n"), 400, "/v2/predict");
    expect(body).toEqual({ ...EMPTY, instance: "/v2/predict" });
  });

  test("no body and no Content-Type is the same 400", async () => {
    const body = await expectProblem(await app.request("/v1/predict/batch", { method: "POST" }), 400, "/v1/predict/batch");
    expect(body).toEqual({ ...EMPTY, instance: "/v1/predict/batch" });
  });

  test("a Content-Type that is not JSON is a 415 problem", async () => {
    const res = await app.request("/v1/predict", {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify({ features: SETOSA }),
    });
    const body = await expectProblem(res, 415, "/v1/predict");
    expect(body).toEqual({ type: "about:blank", title: "Unsupported Media Type", status: 415, detail: "Unsupported Media Type", instance: "/v1/predict" });
  });

  test("form data is a 415 problem", async () => {
    const res = await app.request("/v2/predict", { method: "POST", body: new URLSearchParams({ sepal_length: "5" }) });
    await expectProblem(res, 415, "/v2/predict");
  });

  test("a body without any Content-Type is a 415 problem", async () => {
    const res = await app.request("/v1/predict", { method: "POST", body: new TextEncoder().encode(JSON.stringify({ features: SETOSA })) });
    await expectProblem(res, 415, "/v1/predict");
  });

  test.each([
    ["NaN", '{"features": [NaN, 3.5, 1.4, 0.2]}', "features.0"],
    ["Infinity", '{"features": [5.1, Infinity, 1.4, 0.2]}', "features.1"],
    ["-Infinity", '{"features": [5.1, 3.5, 1.4, -Infinity]}', "features.3"],
  ])("bare %s is a 422 naming the field", async (word, text, path) => {
    const body = await expectProblem(await postJson(app, "/v1/predict", text), 422, "/v1/predict");
    expect(body).toEqual({
      type: "/problems/validation-error",
      title: "Validation failed",
      status: 422,
      detail: `${path}: ${nonFinite(word)}`,
      instance: "/v1/predict",
      errors: [{ path, message: nonFinite(word) }],
    });
  });

  test("bare NaN in a batch and in named features is named by its path", async () => {
    const batch = await expectProblem(await postJson(app, "/v1/predict/batch", '{"instances": [[5.1, 3.5, 1.4, 0.2], [5.1, NaN, 1.4, 0.2]]}'), 422, "/v1/predict/batch");
    expect(batch.errors).toEqual([{ path: "instances.1.1", message: nonFinite("NaN") }]);
    const v2 = await expectProblem(
      await postJson(app, "/v2/predict", '{"sepal_length": Infinity, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}'),
      422,
      "/v2/predict",
    );
    expect(v2.errors).toEqual([{ path: "sepal_length", message: nonFinite("Infinity") }]);
  });

  test("1e999 (parsed as Infinity) is a 422", async () => {
    const body = await expectProblem(await postJson(app, "/v1/predict", '{"features": [1e999, 3.5, 1.4, 0.2]}'), 422, "/v1/predict");
    expect(body.errors).toEqual([{ path: "features.0", message: "sepal_length must be a finite number, got Infinity" }]);
  });

  test("a body that is not an object is a 422", async () => {
    const body = await expectProblem(await postJson(app, "/v1/predict", "[5.1, 3.5, 1.4, 0.2]"), 422, "/v1/predict");
    expect(body.type).toBe("/problems/validation-error");
  });
});

describe(`BODY_LIMIT_BYTES (${LIMIT})`, () => {
  const TOO_LARGE = {
    type: "about:blank",
    title: "Content Too Large",
    status: 413,
    detail: `The request body is larger than ${LIMIT} bytes.`,
    instance: "/v1/predict",
  };

  test("a body of exactly the limit is accepted", async () => {
    const text = bodyOfSize(LIMIT);
    expect(Buffer.byteLength(text)).toBe(LIMIT);
    const res = await postJson(app, "/v1/predict", text, { "Content-Length": String(LIMIT) });
    expect(res.status).toBe(200);
    const streamed = await app.request(streamedRequest("/v1/predict", text));
    expect(streamed.status).toBe(200);
  });

  test("a larger body with Content-Length is a 413 problem, and the model is not called", async () => {
    const text = bodyOfSize(LIMIT + 1);
    const body = await expectProblem(await postJson(app, "/v1/predict", text, { "Content-Length": String(LIMIT + 1) }), 413, "/v1/predict");
    expect(body).toEqual(TOO_LARGE);
    expect(repository.model("iris").calls).toEqual([]);
  });

  test("a larger streamed body without Content-Length is a 413 problem", async () => {
    const req = streamedRequest("/v1/predict", bodyOfSize(LIMIT + 1));
    expect(req.headers.get("content-length")).toBeNull();
    const body = await expectProblem(await app.request(req), 413, "/v1/predict");
    expect(body).toEqual(TOO_LARGE);
    expect(repository.model("iris").calls).toEqual([]);
  });
});

describe("engine errors", () => {
  const predict = () => postJson(app, "/v1/predict", { features: SETOSA });

  test("overloaded is a 503 with Retry-After: 1", async () => {
    repository.model("iris").failWith = new EngineError("overloaded", "the queue is full (1024 requests waiting)", 1);
    const res = await predict();
    expect(res.headers.get("retry-after")).toBe("1");
    const body = await expectProblem(res, 503, "/v1/predict");
    expect(body).toEqual({
      type: "/problems/overloaded",
      title: "Overloaded",
      status: 503,
      detail: "the queue is full (1024 requests waiting)",
      instance: "/v1/predict",
    });
  });

  test("a model still loading is a 503 with Retry-After: 1", async () => {
    repository.setState("iris", "loading");
    const res = await predict();
    expect(res.headers.get("retry-after")).toBe("1");
    const body = await expectProblem(res, 503, "/v1/predict");
    expect(body).toMatchObject({ type: "/problems/not-ready", title: "Not ready", detail: "model 'iris' is still loading" });
  });

  test("a model that failed to load is a 503 saying why", async () => {
    repository.setState("wine", "failed", "the graph has no input 'input'");
    const res = await postJson(app, "/v1/models/wine/predict", { features: [13, 2, 2.3, 18, 105, 2.95, 3.32, 0.22, 2.38, 5.75, 1.25, 3.17, 100] });
    const body = await expectProblem(res, 503, "/v1/models/wine/predict");
    expect(body).toMatchObject({ type: "/problems/not-ready", detail: "model 'wine' failed to load: the graph has no input 'input'" });
  });

  test("invalid_input is a 422 and inference_failed a 500, each with its own type", async () => {
    repository.model("iris").failWith = new EngineError("invalid_input", "row 0 has 3 features, expected 4");
    expect(await expectProblem(await predict(), 422, "/v1/predict")).toMatchObject({ type: "/problems/invalid-input", title: "Invalid input" });
    repository.model("iris").failWith = new EngineError("inference_failed", "onnx said no");
    expect(await expectProblem(await predict(), 500, "/v1/predict")).toMatchObject({ type: "/problems/inference-failed", title: "Inference failed" });
  });

  test("any other error is a generic 500 that leaks neither the message nor a stack, and is logged", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const { app: logged, repository: fakes } = makeApp({}, new FakeRepository(), createLogger("error", sink));
    fakes.model("iris").failWith = new Error("connect ECONNREFUSED secret-db.internal:5432");

    const res = await postJson(logged, "/v1/predict", { features: SETOSA });
    const text = await res.clone().text();
    const body = await expectProblem(res, 500, "/v1/predict");
    expect(body).toEqual({
      type: "about:blank",
      title: "Internal Server Error",
      status: 500,
      detail: "The server failed to answer this request; the failure is logged.",
      instance: "/v1/predict",
    });
    expect(text).not.toContain("secret-db");
    expect(text).not.toContain("ECONNREFUSED");
    expect(text).not.toContain(".ts:");
    expect(lines.join("")).toContain("connect ECONNREFUSED secret-db.internal:5432");
  });
});
