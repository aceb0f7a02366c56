/**
 * Structured logs of the real server (`npm start`), read from its stdout: one access line per request, carrying
 * the response's request id and the key's name but never a key, an Authorization header or a body value; the
 * start-up lines; LOG_LEVEL; the auth-off warning; and production refusing to start without keys.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { realManifest } from "../helpers/fake-repository.ts";
import { modelsDirWith } from "../helpers/models-dir.ts";
import { freePort } from "../helpers/ports.ts";
import { launchServer, startServer, type LaunchedServer, type LogLine } from "../helpers/server.ts";
import { makeKeys, writeKeyFile } from "../helpers/keys.ts";

const { file, secret } = makeKeys([
  { name: "log-alice", scopes: ["predict", "generate"] },
  { name: "log-bob", scopes: ["predict"] },
]);
const KEYS_FILE = writeKeyFile(file);
const UNKNOWN_KEY = "osk_unknownKeyThatMustNeverBeLogged00000000000";

// Distinctive values in request bodies and queries: none may reach a log line.
const MARKERS = {
  number: "5.0987654321",
  named: "6.7123456789",
  prompt: "ZEBRA-MARKER-prompt-q8v1",
  query: "ZEBRA-MARKER-query-k3x9",
  garbage: "ZEBRA-MARKER-garbage-p2m7",
  invalid: "ZEBRA-MARKER-invalid-w4n6",
};

type Sent = { method: string; path: string; status: number; requestId: string; key?: string; model?: string };

/** Parses the JSON lines of a server's output; every stdout line must be JSON. */
function jsonLines(server: LaunchedServer): LogLine[] {
  return server.logs.flatMap((line) => {
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return [];
    }
  });
}

describe("access lines (LOG_LEVEL=info, keys on)", () => {
  const sent: Sent[] = [];
  let server: LaunchedServer;
  let lines: LogLine[];
  let exitCode: number;

  beforeAll(async () => {
    const running = await startServer({ API_KEYS_FILE: KEYS_FILE, LOG_LEVEL: "info" });
    server = running;
    const call = async (expected: Omit<Sent, "requestId">, init: RequestInit & { headers?: Record<string, string> }, query = "") => {
      const res = await fetch(`${running.url}${expected.path}${query}`, init);
      await res.arrayBuffer();
      expect({ path: expected.path, status: res.status }).toEqual({ path: expected.path, status: expected.status });
      sent.push({ ...expected, requestId: res.headers.get("x-request-id")! });
    };
    const json = (body: unknown, headers: Record<string, string> = {}) => ({
      method: "POST",
      headers: { "Content-Type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    const alice = { "X-API-Key": secret["log-alice"] };
    const bobBearer = { Authorization: `Bearer ${secret["log-bob"]}` };

    await call({ method: "POST", path: "/v1/predict", status: 200, key: "log-alice", model: "iris" }, json(`{"features":[${MARKERS.number},3.5,1.4,0.2]}`, { ...alice, "X-Request-Id": "log-req-1" }));
    await call({ method: "POST", path: "/v1/models/wine/predict", status: 200, key: "log-bob", model: "wine" }, json({ features: [14.1, 2.16, 2.3, 18, 105, 2.95, 3.32, 0.22, 2.38, 5.75, 1.25, 3.17, 1510] }, bobBearer));
    await call(
      { method: "POST", path: "/predict", status: 200, key: "log-alice", model: "iris" },
      json(`{"sepal_length":${MARKERS.named},"sepal_width":3.0,"petal_length":5.2,"petal_width":2.3}`, { ...alice, "API-Version": "2" }),
    );
    await call({ method: "POST", path: "/v1/predict/batch", status: 200, key: "log-bob", model: "iris" }, json({ instances: [[5.1, 3.5, 1.4, 0.2]] }, bobBearer));
    await call({ method: "POST", path: "/v1/predict", status: 401 }, json({ features: [5.1, 3.5, 1.4, 0.2] }));
    await call({ method: "POST", path: "/v1/predict", status: 401 }, json({ features: [5.1, 3.5, 1.4, 0.2] }, { Authorization: `Bearer ${UNKNOWN_KEY}` }));
    await call({ method: "POST", path: "/v1/generate", status: 403 }, json({ prompt: MARKERS.prompt }, bobBearer));
    // The key in the query string (EventSource's way): past authentication, then 404 (no text model here).
    await call({ method: "GET", path: "/v1/generate", status: 404, key: "log-alice" }, {}, `?prompt=${MARKERS.query}&api_key=${encodeURIComponent(secret["log-alice"])}`);
    await call({ method: "POST", path: "/v1/predict", status: 400, key: "log-alice" }, json(`{"features": [${MARKERS.garbage}`, alice));
    await call({ method: "POST", path: "/v1/predict", status: 422, key: "log-alice" }, json({ features: MARKERS.invalid }, alice));
    await call({ method: "GET", path: "/health", status: 200 }, { headers: alice });
    await call({ method: "GET", path: "/nowhere", status: 404 }, {});

    // Stopping the server and reading its output to the end: every line it wrote is in, no waiting on guesses.
    exitCode = await server.stop("SIGTERM");
    lines = jsonLines(server);
  });
  afterAll(async () => {
    await server?.stop("SIGKILL");
  });

  test("the server stopped cleanly, and every line it wrote is JSON", () => {
    expect(exitCode).toBe(0);
    const stdoutNotJson = server.logs.filter((l) => l.trim() && !l.trim().startsWith("{"));
    expect(stdoutNotJson).toEqual([]);
  });

  test("one access line per request, with the response's request id, method, path, status and latency", () => {
    const access = lines.filter((l) => l.msg === "request");
    expect(access).toHaveLength(sent.length);
    expect(sent[0]!.requestId).toBe("log-req-1");
    for (const request of sent) {
      const mine = access.filter((l) => l.request_id === request.requestId);
      expect({ request: request.path, count: mine.length }).toEqual({ request: request.path, count: 1 });
      const line = mine[0]!;
      expect(line).toMatchObject({ level: 30, method: request.method, path: request.path, status: request.status });
      expect(typeof line.time).toBe("string");
      expect(typeof line.latency_ms).toBe("number");
      expect(line.latency_ms as number).toBeGreaterThanOrEqual(0);
      expect(Object.keys(line).sort()).toEqual(
        ["latency_ms", "level", "method", "msg", "path", "request_id", "status", "time", ...(request.key ? ["key"] : []), ...(request.model ? ["model"] : [])].sort(),
      );
    }
  });

  test("the key's name (never the key) when authenticated, and the model on predictions", () => {
    const access = lines.filter((l) => l.msg === "request");
    for (const request of sent) {
      const line = access.find((l) => l.request_id === request.requestId)!;
      expect({ path: request.path, status: request.status, key: line.key, model: line.model }).toEqual({
        path: request.path,
        status: request.status,
        key: request.key,
        model: request.model,
      });
    }
  });

  test("no line holds an API key, an Authorization header value or a body or query value", () => {
    const output = server.logs.join("\n");
    const secrets = [secret["log-alice"], secret["log-bob"], UNKNOWN_KEY, `Bearer ${secret["log-bob"]}`, `Bearer ${UNKNOWN_KEY}`];
    for (const value of [...secrets, ...Object.values(MARKERS), "api_key"]) {
      expect({ value, logged: output.includes(value) }).toEqual({ value, logged: false });
    }
    // Nor anything shaped like a key, nor the key file's hashes.
    expect(output).not.toMatch(/osk_[A-Za-z0-9_-]{20,}/);
    for (const entry of file.keys) expect(output).not.toContain(entry.sha256);
  });

  test("start-up: keys loaded (a count, not the keys), the store, listening, each model, models loaded; no auth-off warning", () => {
    const startup = lines.filter((l) => l.msg !== "request" && l.msg !== "shutting down");
    expect(startup.map((l) => l.msg)).toEqual([
      "API keys loaded",
      "rate limits kept in process memory",
      "listening; loading models",
      "model ready",
      "model ready",
      "models loaded",
    ]);
    expect(startup[0]).toMatchObject({ level: 30, file: KEYS_FILE, keys: 2 });
    expect(startup[1]).toMatchObject({ level: 30, store: "memory" });
    expect(startup[2]).toMatchObject({ level: 30, models: ["iris", "wine"], url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/$/) });
    expect(startup.slice(3, 5).map((l) => l.model).sort()).toEqual(["iris", "wine"]);
    expect(lines.some((l) => (l.level ?? 0) >= 40)).toBe(false);
    expect(lines.at(-1)).toMatchObject({ msg: "shutting down", signal: "SIGTERM" });
  });
});

describe("LOG_LEVEL=warn, without API_KEYS_FILE", () => {
  let server: LaunchedServer;
  let exitCode: number;
  const statuses: number[] = [];

  beforeAll(async () => {
    // At warn the server says nothing at info, not even where it listens: so it gets a known port, and a model
    // that cannot load, whose error line (logged after listening and loading) says the server is up.
    const dir = modelsDirWith(["iris", "wine"]);
    mkdirSync(join(dir, "broken"));
    writeFileSync(join(dir, "broken", "model.json"), JSON.stringify({ ...realManifest("iris"), name: "broken" }));
    writeFileSync(join(dir, "broken", "model.onnx"), "not an ONNX graph");
    const port = freePort();
    server = launchServer({ LOG_LEVEL: "warn", MODELS_DIR: dir, PORT: String(port) });
    await server.waitForLog("model failed to load");
    const url = `http://127.0.0.1:${port}`;
    // The others may still be loading: /health says when none is (each poll a real answer, no sleeping).
    while (((await (await fetch(`${url}/health`)).json()) as { models: { state: string }[] }).models.some((m) => m.state === "loading"));
    for (const res of [
      await fetch(`${url}/v1/predict`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] }) }),
      await fetch(`${url}/health`),
      await fetch(`${url}/nowhere`),
    ]) {
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    exitCode = await server.stop("SIGTERM");
  });
  afterAll(async () => {
    await server?.stop("SIGKILL");
  });

  test("authentication is off: the requests were answered without a key", () => {
    expect(statuses).toEqual([200, 200, 404]);
    expect(exitCode).toBe(0);
  });

  test("the start warns that authentication is off, naming API_KEYS_FILE", () => {
    const warning = jsonLines(server).find((l) => typeof l.msg === "string" && l.msg.startsWith("API_KEYS_FILE is not set"));
    expect(warning).toMatchObject({ level: 40, msg: expect.stringContaining("authentication is OFF") });
  });

  test("no access lines and nothing below warn", () => {
    const lines = jsonLines(server);
    expect(lines.filter((l) => l.msg === "request")).toEqual([]);
    expect(lines.filter((l) => (l.level ?? 0) < 40)).toEqual([]);
    expect(lines.map((l) => l.msg)).toEqual([expect.stringMatching(/^API_KEYS_FILE is not set/), "model failed to load"]);
  });
});

describe("the auth-off warning at info", () => {
  test("comes before anything else at start when API_KEYS_FILE is unset", async () => {
    const server = await startServer({});
    try {
      const first = jsonLines(server)[0];
      expect(first).toMatchObject({ level: 40, msg: expect.stringContaining("API_KEYS_FILE is not set: authentication is OFF") });
      expect(jsonLines(server).some((l) => l.msg === "API keys loaded")).toBe(false);
    } finally {
      await server.stop("SIGKILL");
    }
  });
});

describe("NODE_ENV=production", () => {
  test("without API_KEYS_FILE the server exits non-zero, naming API_KEYS_FILE, and never listens", async () => {
    const server = launchServer({ NODE_ENV: "production" });
    const code = await server.exited;
    expect(code).not.toBe(0);
    const output = server.logs.join("\n");
    expect(output).toContain("API_KEYS_FILE");
    expect(output).toContain("NODE_ENV=production");
    expect(output).not.toContain("listening");
  });

  test("with API_KEYS_FILE it starts", async () => {
    const server = await startServer({ NODE_ENV: "production", API_KEYS_FILE: KEYS_FILE });
    try {
      expect(await server.waitForLog("API keys loaded")).toMatchObject({ keys: 2 });
      expect((await fetch(`${server.url}/v1/predict`, { method: "POST" })).status).toBe(401);
    } finally {
      await server.stop("SIGKILL");
    }
  });
});
