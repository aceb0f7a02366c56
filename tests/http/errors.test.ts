import { beforeEach, describe, expect, test } from "bun:test";
import { Writable } from "node:stream";
import { EngineError } from "../../src/engine/errors.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { testApp } from "../helpers/app.ts";
import { expectProblem, postJson } from "../helpers/http.ts";

const SETOSA = [5.1, 3.5, 1.4, 0.2];
const LIMIT = 200;

const { app, repository } = testApp({ env: { BODY_LIMIT_BYTES: String(LIMIT) } });
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

  test("a known path with another method is a 405 problem with Allow", async () => {
    const res = await app.request("/v1/predict");
    expect(res.headers.get("allow")).toBe("POST");
    const body = await expectProblem(res, 405, "/v1/predict");
    expect(body).toEqual({ type: "about:blank", title: "Method Not Allowed", status: 405, detail: "/v1/predict does not answer GET; it answers POST.", instance: "/v1/predict" });
    // A path with parameters, and one that GET answers (HEAD with it).
    expect((await app.request("/v1/models/iris/reload")).headers.get("allow")).toBe("POST");
    const generate = await app.request("/v1/generate", { method: "PUT" });
    expect(generate.status).toBe(405);
    expect(generate.headers.get("allow")).toBe("GET, HEAD, POST");
    expect((await app.request("/health", { method: "POST" })).headers.get("allow")).toBe("GET, HEAD");
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

  const UNSUPPORTED = { type: "/problems/unsupported-media-type", title: "Unsupported Media Type", status: 415 };

  test("no Content-Type is a 415 saying to send one, with a body or without", async () => {
    const detail = "The request has no Content-Type: send a JSON object with Content-Type: application/json.";
    const empty = await expectProblem(await app.request("/v1/predict/batch", { method: "POST" }), 415, "/v1/predict/batch");
    expect(empty).toEqual({ ...UNSUPPORTED, detail, instance: "/v1/predict/batch" });
    const res = await app.request("/v1/predict", { method: "POST", body: new TextEncoder().encode(JSON.stringify({ features: SETOSA })) });
    expect(await expectProblem(res, 415, "/v1/predict")).toEqual({ ...UNSUPPORTED, detail, instance: "/v1/predict" });
    expect(repository.model("iris").calls).toEqual([]);
  });

  test("a Content-Type that is not JSON is a 415 problem naming it", async () => {
    const res = await app.request("/v1/predict", {
      method: "POST",
      headers: { "Content-Type": "text/plain; charset=utf-8" },
      body: JSON.stringify({ features: SETOSA }),
    });
    const body = await expectProblem(res, 415, "/v1/predict");
    expect(body).toEqual({ ...UNSUPPORTED, detail: "The body is 'text/plain', not JSON: send a JSON object with Content-Type: application/json.", instance: "/v1/predict" });
  });

  test("JSON in another charset is a 415; +json types and a UTF-8 charset are JSON", async () => {
    const post = (type: string) => app.request("/v1/predict", { method: "POST", headers: { "Content-Type": type }, body: JSON.stringify({ features: SETOSA }) });
    const latin1 = await expectProblem(await post("application/json; charset=iso-8859-1"), 415, "/v1/predict");
    expect(latin1.detail).toBe("JSON bodies are UTF-8, not iso-8859-1: send a JSON object with Content-Type: application/json.");
    expect((await post("application/json; charset=UTF-8")).status).toBe(200);
    expect((await post("application/merge-patch+json")).status).toBe(200);
  });

  test.each(["gzip", "br", "deflate, gzip"])("Content-Encoding: %s is a 415, not 'malformed JSON'", async (encoding) => {
    const gzipped = Bun.gzipSync(new TextEncoder().encode(JSON.stringify({ features: SETOSA })));
    const res = await app.request("/v1/predict", { method: "POST", headers: { "Content-Type": "application/json", "Content-Encoding": encoding }, body: gzipped });
    const body = await expectProblem(res, 415, "/v1/predict");
    expect(body).toEqual({
      ...UNSUPPORTED,
      detail: `Content-Encoding '${encoding}' is not accepted: send a JSON object with Content-Type: application/json, uncompressed.`,
      instance: "/v1/predict",
    });
    expect(repository.model("iris").calls).toEqual([]);
  });

  test("Content-Encoding: identity is no encoding", async () => {
    const res = await app.request("/v1/predict", { method: "POST", headers: { "Content-Type": "application/json", "Content-Encoding": "identity" }, body: JSON.stringify({ features: SETOSA }) });
    expect(res.status).toBe(200);
  });

  test("bytes that are not UTF-8 are a 400 naming where, never silently replaced", async () => {
    // A valid JSON text but for a lone continuation byte (0x80) inside a string, at offset 10.
    const bytes = new Uint8Array([...new TextEncoder().encode('{"model":"'), 0x80, ...new TextEncoder().encode('","features":[5.1,3.5,1.4,0.2]}')]);
    const res = await app.request("/v1/predict", { method: "POST", headers: { "Content-Type": "application/json" }, body: bytes });
    const body = await expectProblem(res, 400, "/v1/predict");
    expect(body).toEqual({
      type: "/problems/invalid-utf8",
      title: "Invalid UTF-8",
      status: 400,
      detail: "The body is not valid UTF-8 (first bad byte at offset 10); JSON must be UTF-8.",
      instance: "/v1/predict",
    });
    expect(repository.model("iris").calls).toEqual([]);
    // A truncated character at the very end, and an overlong encoding of "/".
    for (const bad of [[0x7b, 0x22, 0xe2, 0x82], [0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x7d]]) {
      const r = await app.request("/v1/predict", { method: "POST", headers: { "Content-Type": "application/json" }, body: new Uint8Array(bad) });
      expect((await expectProblem(r, 400, "/v1/predict")).type).toBe("/problems/invalid-utf8");
    }
  });

  test("form data is a 415 problem", async () => {
    const res = await app.request("/v2/predict", { method: "POST", body: new URLSearchParams({ sepal_length: "5" }) });
    await expectProblem(res, 415, "/v2/predict");
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
    const { app: logged, repository: fakes } = testApp({ logger: createLogger("error", sink) });
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
