import { describe, expect, test } from "bun:test";
import { EngineError } from "../../../../../src/engine/errors.ts";
import type { Feeds } from "../../../../../src/engine/execution/session-pool.ts";
import type { TensorInfo } from "../../../../../src/engine/execution/session-protocol.ts";
import { ImageClassificationManifest } from "../../../../../src/engine/registry/manifest.ts";
import type { RowBatcher, RowResult } from "../../../../../src/engine/scheduling/row-batcher.ts";
import { ImageClassifier } from "../../../../../src/engine/tasks/image/classifier.ts";
import { solid } from "../../../../helpers/images.ts";

const LIMITS = { maxPixels: 1_000_000 };

/** A 2 x 2 RGB NHWC model with raw 0-255 input and three labels. */
const manifest = (fields: Partial<ImageClassificationManifest> = {}) =>
  ImageClassificationManifest.parse({
    name: "colours",
    version: "1.2.3",
    task: "image-classification",
    onnx: { input: "image", output: "scores", scores: "probabilities" },
    preprocessing: { layout: "NHWC", width: 2, height: 2, color: "rgb", scale: 1 },
    labels: ["red", "green", "blue"],
    ...fields,
  });

/**
 * A batcher whose "model" scores each image by its mean red, green and blue (divided by 255, or left as logits): what
 * it was fed is kept, to check the tensor.
 */
class FakeBatcher {
  readonly runs: Feeds[] = [];
  inputs: TensorInfo[] = [{ name: "image", type: "float32", shape: ["batch", 2, 2, 3] }];
  outputs: TensorInfo[] = [{ name: "scores", type: "float32", shape: ["batch", 3] }];
  labels = 3;

  async run(feeds: Feeds): Promise<RowResult> {
    this.runs.push(feeds);
    const tensor = feeds.image!;
    const data = tensor.data as Float32Array;
    const rows = tensor.dims[0]!;
    const size = data.length / rows;
    const out = new Float32Array(rows * this.labels);
    for (let r = 0; r < rows; r++) {
      for (let p = 0; p < size; p++) out[r * this.labels + (p % 3)]! += data[r * size + p]! / (size / 3) / 255;
    }
    return { outputs: { scores: { type: "float32", dims: [rows, this.labels], data: out } }, timing: { queueMs: 1.5, inferenceMs: 2.5 } };
  }
  async close() {}
}

const classifier = (batcher = new FakeBatcher(), m = manifest()) => ({ batcher, model: new ImageClassifier(m, batcher as unknown as RowBatcher, LIMITS) });

function thrown(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (error) {
    if (error instanceof EngineError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error("nothing was thrown");
}

describe("ImageClassifier.classify", () => {
  test("runs every image as one request of the batcher: [images, ...one image's dims], in order", async () => {
    const { batcher, model } = classifier();
    const images = await Promise.all([solid("png", 5, 3, { r: 0, g: 0, b: 255 }), solid("png", 4, 4, { r: 255, g: 0, b: 0 }), solid("jpeg", 9, 9, { r: 0, g: 255, b: 0 })]);
    const { results, timing } = await model.classify(
      images.map((bytes, i) => ({ bytes, label: `file ${i + 1}` })),
      2,
    );
    expect(batcher.runs).toHaveLength(1);
    expect(batcher.runs[0]!.image!.dims).toEqual([3, 2, 2, 3]);
    expect(results.map((r) => [r.label, r.width, r.height, r.top_k.length])).toEqual([
      ["blue", 5, 3, 2],
      ["red", 4, 4, 2],
      ["green", 9, 9, 2],
    ]);
    expect(results[1]!.confidence).toBeCloseTo(1, 5);
    expect(timing).toMatchObject({ queueMs: 1.5, inferenceMs: 2.5 });
    expect(timing.decodeMs).toBeGreaterThan(0);
  });

  test("top_k: most confident first, at least 1, at most the label count", async () => {
    const { model } = classifier();
    const purple = await solid("png", 2, 2, { r: 200, g: 0, b: 100 });
    const ranked = async (k: number) => (await model.classify([{ bytes: purple, label: "x" }], k)).results[0]!.top_k.map((s) => s.label);
    expect(await ranked(3)).toEqual(["red", "blue", "green"]);
    expect(await ranked(99)).toEqual(["red", "blue", "green"]);
    expect(await ranked(0)).toEqual(["red"]);
  });

  test("logits get a softmax", async () => {
    const { model } = classifier(new FakeBatcher(), manifest({ onnx: { input: "image", output: "scores", scores: "logits" } }));
    const { results } = await model.classify([{ bytes: await solid("png", 2, 2, { r: 255, g: 0, b: 0 }), label: "x" }], 3);
    // Logits (1, 0, 0): e / (e + 2).
    expect(results[0]!.confidence).toBeCloseTo(Math.E / (Math.E + 2), 5);
    expect(results[0]!.top_k.reduce((s, x) => s + x.confidence, 0)).toBeCloseTo(1, 5);
  });

  test("a refused image refuses the request, naming it; nothing runs", async () => {
    const { batcher, model } = classifier();
    const good = await solid("png", 2, 2, { r: 255, g: 0, b: 0 });
    const error = await model.classify([{ bytes: good, label: "file 1" }, { bytes: new TextEncoder().encode("text"), label: "file 2 ('b.png')" }], 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect((error as EngineError).code).toBe("unsupported_media_type");
    expect((error as EngineError).message).toStartWith("file 2 ('b.png') is not an image of a type this server reads");
    expect(batcher.runs).toEqual([]);
    expect(((await model.classify([], 1).catch((e: unknown) => e)) as EngineError).code).toBe("invalid_input");
  });

  test("an output that does not hold one score per label and image is inference_failed", async () => {
    const batcher = new FakeBatcher();
    const { model } = classifier(batcher);
    batcher.labels = 2;
    const error = (await model.classify([{ bytes: await solid("png", 2, 2, { r: 1, g: 2, b: 3 }), label: "x" }], 1).catch((e: unknown) => e)) as EngineError;
    expect(error.code).toBe("inference_failed");
  });
});

describe("the graph is checked against the manifest at load", () => {
  test("input and output names, rank, image size, channels and label count", () => {
    const check = (change: (b: FakeBatcher) => void) => {
      const batcher = new FakeBatcher();
      change(batcher);
      return thrown(() => new ImageClassifier(manifest(), batcher as unknown as RowBatcher, LIMITS));
    };
    expect(check((b) => (b.inputs[0]!.name = "pixels"))).toEqual({ code: "load_failed", message: "colours: the graph has no input 'image' (it has pixels)" });
    expect(check((b) => (b.inputs[0]!.shape = ["batch", 3, 2, 2])).message).toBe(
      "colours: input 'image' has shape [batch, 3, 2, 2]; the manifest describes [batch, 2, 2, 3] (NHWC, rgb, 2 x 2)",
    );
    expect(check((b) => (b.inputs[0]!.shape = ["batch", 12])).message).toContain("has 2 dimensions");
    expect(check((b) => (b.outputs[0]!.shape = ["batch", 4])).message).toBe("colours: the graph returns 4 scores, the manifest lists 3 labels");
    expect(check((b) => (b.inputs[0]!.type = "uint8")).message).toBe("colours: input 'image' is uint8; image models take float32");
    // Free dimensions are taken on trust.
    expect(() => new ImageClassifier(manifest(), Object.assign(new FakeBatcher(), { inputs: [{ name: "image", type: "float32", shape: [-1, "h", "w", 3] }] }) as unknown as RowBatcher, LIMITS)).not.toThrow();
  });
});
