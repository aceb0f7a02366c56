/**
 * The real server (started as `npm start` does) against a small Open Inference Protocol client written from the
 * specification alone (kserve/open-inference-protocol, specification/protocol/inference_rest.md): plain fetch
 * calls, requests built from the model metadata the server reports, as a client that knows nothing of this server
 * would. Models: iris (tabular), digits (an image model, fed the held-out digit pictures as tensors), and a text
 * model the protocol does not serve. API keys are on: infer needs one, metadata and health do not.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { symlinkSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { keysFile } from "../helpers/keys.ts";
import { modelsDirWith } from "../helpers/models-dir.ts";
import { startServer, type RunningServer } from "../helpers/server.ts";

const FIXTURES = join(import.meta.dir, "..", "fixtures");

// --- The client: the specification's endpoints and JSON objects, nothing else ---

/** $metadata_tensor */
type MetadataTensor = { name: string; datatype: string; shape: number[] };
/** $metadata_model_response */
type ModelMetadata = { name: string; versions?: string[]; platform: string; inputs: MetadataTensor[]; outputs: MetadataTensor[] };
/** $inference_request_input */
type RequestInput = { name: string; shape: number[]; datatype: string; parameters?: Record<string, unknown>; data: unknown[] };
/** $inference_request */
type InferenceRequest = { id?: string; parameters?: Record<string, unknown>; inputs: RequestInput[]; outputs?: { name: string }[] };
/** $inference_response */
type InferenceResponse = { model_name: string; model_version?: string; id?: string; outputs: (MetadataTensor & { data: unknown[] })[] };

/** A failed request: the HTTP status and the `error` of the specification's error object. */
class ProtocolError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

class InferenceClient {
  constructor(
    private readonly base: string,
    private readonly headers: Record<string, string> = {},
  ) {}

  private async call<T>(path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.base}/${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: body === undefined ? this.headers : { ...this.headers, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as T & { error?: string };
    if (!res.ok) {
      // "The HTTP body must contain the $inference_error_response object": {"error": <error message string>}
      if (typeof json.error !== "string") throw new Error(`status ${res.status} without the protocol's error object: ${JSON.stringify(json)}`);
      throw new ProtocolError(res.status, json.error);
    }
    return json;
  }

  private model(name: string, version?: string) {
    return `v2/models/${name}${version === undefined ? "" : `/versions/${version}`}`;
  }

  serverMetadata = () => this.call<{ name: string; version: string; extensions: string[] }>("v2");
  live = () => this.call<{ live: boolean }>("v2/health/live");
  ready = () => this.call<{ ready: boolean }>("v2/health/ready");
  modelMetadata = (name: string, version?: string) => this.call<ModelMetadata>(this.model(name, version));
  modelReady = (name: string, version?: string) => this.call<{ name: string; ready: boolean }>(`${this.model(name, version)}/ready`);
  infer = (name: string, request: InferenceRequest, version?: string) => this.call<InferenceResponse>(`${this.model(name, version)}/infer`, request);
}

/** The client's error, for a call expected to fail. */
async function failure(call: Promise<unknown>): Promise<ProtocolError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProtocolError);
  return error as ProtocolError;
}

/** A tensor for a metadata input: its name and datatype, its shape with each -1 (the batch) set to `batch`. */
const tensorFor = (input: MetadataTensor, batch: number, data: unknown[]): RequestInput => ({
  name: input.name,
  datatype: input.datatype,
  shape: input.shape.map((d) => (d === -1 ? batch : d)),
  data,
});

const argmax = (row: number[]) => row.indexOf(Math.max(...row));

describe("a client written from the specification, against the real server", () => {
  let server: RunningServer;
  let client: InferenceClient;
  let anonymous: InferenceClient;
  let key: string;

  beforeAll(async () => {
    const dir = modelsDirWith(["iris", "digits"]);
    symlinkSync(join(FIXTURES, "tiny-lm"), join(dir, "tiny-lm"), "dir");
    const keys = keysFile([{ name: "client", scopes: ["predict"] }]);
    server = await startServer({ MODELS_DIR: dir, API_KEYS_FILE: keys.path });
    key = keys.secret.client;
    client = new InferenceClient(server.url, { "X-API-Key": key });
    anonymous = new InferenceClient(server.url);
  });
  afterAll(async () => {
    await server?.stop("SIGKILL");
  });

  test("server metadata, live and ready, without a key", async () => {
    const metadata = await anonymous.serverMetadata();
    expect(metadata.name).toBe("onnx-serve");
    expect(metadata.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(metadata.extensions).toEqual([]);
    expect(await anonymous.live()).toEqual({ live: true });
    expect(await anonymous.ready()).toEqual({ ready: true });
  });

  test("iris: metadata, then rows built from it; the argmax is each row's species", async () => {
    const metadata = await anonymous.modelMetadata("iris");
    expect(metadata).toEqual({
      name: "iris",
      versions: ["1.0.0"],
      platform: "onnx_onnxv1",
      inputs: [{ name: "input", datatype: "FP32", shape: [-1, 4] }],
      outputs: [{ name: "probabilities", datatype: "FP32", shape: [-1, 3] }],
    });
    expect(await anonymous.modelReady("iris", metadata.versions![0])).toEqual({ name: "iris", ready: true });
    const rows = [
      [5.1, 3.5, 1.4, 0.2],
      [6.4, 3.2, 4.5, 1.5],
      [6.7, 3.0, 5.2, 2.3],
    ];
    const response = await client.infer("iris", { id: "iris-1", inputs: [tensorFor(metadata.inputs[0]!, 3, rows)] }, metadata.versions![0]);
    expect(response.model_name).toBe("iris");
    expect(response.model_version).toBe("1.0.0");
    expect(response.id).toBe("iris-1");
    const [probabilities] = response.outputs;
    expect(probabilities!.name).toBe("probabilities");
    expect(probabilities!.datatype).toBe("FP32");
    expect(probabilities!.shape).toEqual([3, 3]);
    const p = probabilities!.data as number[];
    expect([0, 1, 2].map((r) => argmax(p.slice(r * 3, r * 3 + 3)))).toEqual([0, 1, 2]);
    for (let r = 0; r < 3; r++) expect(p.slice(r * 3, r * 3 + 3).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  test("digits: the ten held-out pictures as one [10, 1, 28, 28] tensor, normalised as the manifest says; each read right", async () => {
    const metadata = await anonymous.modelMetadata("digits");
    expect(metadata.inputs).toEqual([{ name: "pixels", datatype: "FP32", shape: [-1, 1, 28, 28] }]);
    const pictures = await Promise.all(
      Array.from({ length: 10 }, async (_, digit) => {
        const gray = await sharp(join(FIXTURES, "images", `digit-${digit}.png`)).greyscale().raw().toBuffer();
        expect(gray.length).toBe(28 * 28);
        // 0..255 * (1/255), then (x - 0.5) / 0.5, as models/digits/model.json's preprocessing says.
        return Array.from(gray, (v) => (v / 255 - 0.5) / 0.5);
      }),
    );
    const response = await client.infer("digits", { inputs: [tensorFor(metadata.inputs[0]!, 10, pictures.flat())], outputs: [{ name: "probabilities" }] });
    const [out] = response.outputs;
    expect(out!.shape).toEqual([10, 10]);
    const p = out!.data as number[];
    expect(Array.from({ length: 10 }, (_, i) => argmax(p.slice(i * 10, i * 10 + 10)))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test("concurrent requests, some through the protocol and some through /v1, each get their own rows", async () => {
    const rows = [
      [5.1, 3.5, 1.4, 0.2],
      [6.7, 3.0, 5.2, 2.3],
    ];
    const viaProtocol = Array.from({ length: 20 }, (_, i) => client.infer("iris", { inputs: [{ name: "input", shape: [1, 4], datatype: "FP32", data: rows[i % 2]! }] }));
    const viaV1 = Array.from({ length: 20 }, (_, i) =>
      fetch(`${server.url}/v1/models/iris/predict`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-API-Key": key },
        body: JSON.stringify({ features: rows[i % 2] }),
      }).then((r) => r.json() as Promise<{ class: number }>),
    );
    const answers = await Promise.all(viaProtocol);
    expect(answers.map((a) => argmax(a.outputs[0]!.data as number[]))).toEqual(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 0 : 2)));
    expect((await Promise.all(viaV1)).map((a) => a.class)).toEqual(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 0 : 2)));
  });

  test("errors are the specification's error object, with the status saying what kind", async () => {
    const row = { name: "input", shape: [1, 4], datatype: "FP32", data: [5.1, 3.5, 1.4, 0.2] };
    const noKey = await failure(anonymous.infer("iris", { inputs: [row] }));
    expect(noKey.status).toBe(401);
    const wrongType = await failure(client.infer("iris", { inputs: [{ ...row, datatype: "FP64" }] }));
    expect({ status: wrongType.status, message: wrongType.message }).toEqual({ status: 400, message: "input 'input' must be FP32, not FP64" });
    const fp16 = await failure(client.infer("iris", { inputs: [{ ...row, datatype: "FP16" }] }));
    expect(fp16.status).toBe(400);
    expect(fp16.message).toContain("FP16 has no JSON representation");
    const unknown = await failure(client.modelMetadata("resnet50"));
    expect({ status: unknown.status, message: unknown.message }).toEqual({ status: 404, message: "no model named 'resnet50'; this protocol serves: digits, iris" });
    const version = await failure(client.modelReady("iris", "2"));
    expect({ status: version.status, message: version.message }).toEqual({ status: 404, message: "model 'iris' has no version '2'; the served version is 1.0.0" });
    const text = await failure(client.infer("tiny-lm", { inputs: [{ name: "input_ids", shape: [1, 1], datatype: "INT64", data: [1] }] }));
    expect(text.status).toBe(404);
    expect(text.message).toContain("text-generation model, which the inference protocol does not serve");
  });
});
