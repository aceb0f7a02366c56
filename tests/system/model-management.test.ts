/**
 * Model management against the real server, over real HTTP: versions uploaded, replaced, rolled back and reloaded
 * while clients keep predicting with the model (not one request may fail); a restart on the same models folder;
 * what an interrupted upload leaves; and paths that try to leave the models folder.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { MODELS_DIR, realManifest } from "../helpers/fake-repository.ts";
import { rawExchange } from "../helpers/http.ts";
import { modelsDirCopy, tempDir, uploadForm } from "../helpers/models-dir.ts";
import { startServer, type RunningServer } from "../helpers/server.ts";

const iris = realManifest("iris");
const IRIS = join(MODELS_DIR, "iris");
const SETOSA = [5.1, 3.5, 1.4, 0.2];
/** Each version labels the classes its own way, so every answer says which version computed it. */
const labelsOf = (version: string) => ["setosa", "versicolor", "virginica"].map((l) => `${l}@${version}`);
const irisVersion = (version: string) => uploadForm({ ...iris, version, labels: labelsOf(version) }, IRIS);

/** Sends `method path` exactly as written (fetch would resolve dot segments first); resolves with the status. */
function rawStatus(url: string, method: string, path: string): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, method, path }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode!));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("versions changing under load", () => {
  let server: RunningServer;
  let root: string;
  beforeAll(async () => {
    root = modelsDirCopy(["iris", "wine"]);
    // Worker sessions (two per model), as a model of real size gets: the swap closes pools other requests still use.
    server = await startServer({ MODELS_DIR: root, MODEL_VERSIONS_KEPT: "2", INLINE_INFERENCE_MAX_MS: "0", SESSIONS_PER_MODEL: "2" });
  });
  afterAll(async () => {
    await server?.stop("SIGKILL");
  });

  test("not one request fails while versions are uploaded, replaced, rolled back and reloaded, and models come and go", async () => {
    const failures: string[] = [];
    const versionsSeen = new Set<string>();
    let served = 0;
    let changing = true;
    const client = async () => {
      while (changing) {
        try {
          const res = await fetch(`${server.url}/v1/models/iris/predict`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ features: SETOSA }) });
          const text = await res.text();
          if (res.status !== 200) failures.push(`${res.status} ${text}`);
          else {
            const body = JSON.parse(text) as { version: string; label: string };
            if (body.label !== `setosa@${body.version}` && body.label !== "setosa") failures.push(`version ${body.version} answered ${body.label}`);
            versionsSeen.add(body.version);
            served++;
          }
        } catch (error) {
          failures.push(`network: ${String(error)}`);
        }
      }
    };

    const change = async (method: string, path: string, body?: FormData) => {
      const res = await fetch(`${server.url}${path}`, { method, body });
      const text = await res.text();
      expect({ method, path, status: res.status, text }).toMatchObject({ status: method === "POST" && path === "/v1/models" ? 201 : 200 });
      return JSON.parse(text) as { version?: string; versions?: string[] };
    };
    const sequence = async () => {
      // Let every client have a request in flight before the first change.
      while (served < 8) await Bun.sleep(1);
      const steps: [string, string, FormData?][] = [
        ["PUT", "/v1/models/iris", irisVersion("1.1.0")],
        ["PUT", "/v1/models/iris", irisVersion("1.2.0")],
        ["POST", "/v1/models/iris/rollback"],
        ["PUT", "/v1/models/iris", irisVersion("1.3.0")],
        ["POST", "/v1/models/iris/reload"],
        ["PUT", "/v1/models/iris", irisVersion("1.4.0")],
        ["POST", "/v1/models/iris/rollback"],
        ["POST", "/v1/models", uploadForm({ ...iris, name: "flowers" }, IRIS)],
        ["PUT", "/v1/models/iris", irisVersion("2.0.0")],
        ["DELETE", "/v1/models/flowers"],
        ["PUT", "/v1/models/iris", irisVersion("2.1.0")],
        ["POST", "/v1/models/iris/rollback"],
      ];
      const answers = [];
      for (const [method, path, body] of steps) {
        answers.push(await change(method, path, body));
        // Some requests on each version before the next change.
        const mark = served;
        while (served < mark + 8) await Bun.sleep(1);
      }
      changing = false;
      return answers;
    };

    const [answers] = await Promise.all([sequence(), ...Array.from({ length: 8 }, client)]);
    expect(failures).toEqual([]);
    expect(answers.map((a) => a.version ?? "-")).toEqual(["1.1.0", "1.2.0", "1.1.0", "1.3.0", "1.3.0", "1.4.0", "1.3.0", "1.0.0", "2.0.0", "-", "2.1.0", "2.0.0"]);
    expect(served).toBeGreaterThan(100);
    // Every version that served in between answered some requests.
    for (const version of ["1.1.0", "1.2.0", "1.3.0", "1.4.0", "2.0.0", "2.1.0"]) expect(versionsSeen).toContain(version);
    // 2.1.0 pushed 1.3.0 out (two versions kept); its rollback removed 2.1.0.
    expect(readdirSync(join(root, "iris")).sort()).toEqual(["2.0.0", "CURRENT"]);
    expect(readdirSync(root).sort()).toEqual(["iris", "wine"]);
  });

  test("an upload announcing more than MODEL_UPLOAD_MAX_BYTES is a 413 problem before its body is sent, whatever its size", async () => {
    // 250 MiB: over the default limit, and over the runtime's own default (Bun refuses above 128 MiB with a bare 413).
    const head = `PUT /v1/models/iris HTTP/1.1\r\nHost: ${new URL(server.url).host}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: ${250 * 1024 * 1024}\r\n\r\n`;
    const answer = await rawExchange(server.url, head);
    expect(answer).toStartWith("HTTP/1.1 413");
    expect(answer.toLowerCase()).toContain("content-type: application/problem+json");
  });

  test("paths that try to leave the models folder change nothing, whatever their encoding", async () => {
    const before = readdirSync(join(root, "..")).length;
    const answers: Record<string, number[]> = {};
    for (const path of ["/v1/models/%2e%2e", "/v1/models/..", "/v1/models/%2e%2e%2f%2e%2e%2fetc", "/v1/models/..%2Fwine", "/v1/models/iris%2F..%2F..", "/v1/models/%C3%A9", "/v1/models/.trash-x"]) {
      answers[path] = [await rawStatus(server.url, "DELETE", path), await rawStatus(server.url, "POST", `${path}/rollback`)];
    }
    // Dot segments are resolved before routing (no model route matches what is left); anything else that reaches a
    // model route is refused by the name's pattern.
    expect(answers).toEqual({
      "/v1/models/%2e%2e": [404, 404],
      "/v1/models/..": [404, 404],
      "/v1/models/%2e%2e%2f%2e%2e%2fetc": [422, 422],
      "/v1/models/..%2Fwine": [422, 422],
      "/v1/models/iris%2F..%2F..": [422, 422],
      "/v1/models/%C3%A9": [422, 422],
      "/v1/models/.trash-x": [422, 422],
    });
    expect(readdirSync(root).sort()).toEqual(["iris", "wine"]);
    expect(readdirSync(join(root, "..")).length).toBe(before);
    expect((await fetch(`${server.url}/v1/models/wine`)).status).toBe(200);
  });
});

describe("restarts", () => {
  test("a restart on the same MODELS_DIR serves the current version; an interrupted upload's leftovers are ignored and removed", async () => {
    const root = modelsDirCopy(["iris"]);
    const first = await startServer({ MODELS_DIR: root });
    try {
      expect((await fetch(`${first.url}/v1/models/iris`, { method: "PUT", body: irisVersion("1.1.0") })).status).toBe(200);
      expect((await fetch(`${first.url}/v1/models`, { method: "POST", body: uploadForm({ ...iris, name: "flowers", version: "3.0.0" }, IRIS) })).status).toBe(201);
    } finally {
      await first.stop("SIGKILL");
    }
    // What a crash mid-upload leaves: a new model's work folder with half a graph, a new version's, a CURRENT
    // being written, and a version folder renamed into place whose CURRENT was never written.
    mkdirSync(join(root, ".upload-0a1b2c3d4e5f", "staged"), { recursive: true });
    writeFileSync(join(root, ".upload-0a1b2c3d4e5f", "staged", "model.json"), JSON.stringify({ ...iris, name: "half" }));
    writeFileSync(join(root, ".upload-0a1b2c3d4e5f", "staged", "model.onnx"), readFileSync(join(IRIS, "model.onnx")).subarray(0, 200));
    mkdirSync(join(root, "iris", ".upload-9f8e7d6c5b4a", "staged"), { recursive: true });
    writeFileSync(join(root, "iris", ".current-123456789abc"), "1.2");
    cpSync(join(root, "iris", "1.1.0"), join(root, "iris", "1.2.0"), { recursive: true });

    const second = await startServer({ MODELS_DIR: root });
    try {
      const model = (await (await fetch(`${second.url}/v1/models/iris`)).json()) as Record<string, unknown>;
      expect(model).toMatchObject({ id: "iris", version: "1.1.0", versions: ["1.0.0", "1.1.0"], state: "ready" });
      const res = await fetch(`${second.url}/v1/models/iris/predict`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ features: SETOSA }) });
      expect(await res.json()).toMatchObject({ model: "iris", version: "1.1.0", label: "setosa@1.1.0" });
      const list = (await (await fetch(`${second.url}/v1/models`)).json()) as { data: { id: string; version: string }[] };
      expect(list.data.map((m) => [m.id, m.version])).toEqual([
        ["flowers", "3.0.0"],
        ["iris", "1.1.0"],
      ]);
      expect(readdirSync(root).sort()).toEqual(["flowers", "iris"]);
      expect(readdirSync(join(root, "iris")).sort()).toEqual(["1.0.0", "1.1.0", "CURRENT"]);
      expect(second.logs.some((l) => l.includes("removing an interrupted upload or removal"))).toBe(true);
    } finally {
      await second.stop("SIGKILL");
    }
  });

  test("a model folder that is a symbolic link is served, never changed through the API", async () => {
    const outside = modelsDirCopy(["iris"]);
    const root = tempDir();
    symlinkSync(join(outside, "iris"), join(root, "iris"), "dir");
    const server = await startServer({ MODELS_DIR: root });
    try {
      expect((await fetch(`${server.url}/v1/models/iris`, { method: "PUT", body: irisVersion("9.0.0") })).status).toBe(409);
      expect((await fetch(`${server.url}/v1/models/iris`, { method: "DELETE" })).status).toBe(409);
      expect((await fetch(`${server.url}/v1/models/iris/rollback`, { method: "POST" })).status).toBe(409);
      expect(readdirSync(join(outside, "iris")).sort()).toEqual(["model.json", "model.onnx"]);
      expect(existsSync(join(root, "iris", "model.onnx"))).toBe(true);
      expect(readdirSync(root)).toEqual(["iris"]);
    } finally {
      await server.stop("SIGKILL");
    }
  });
});
