/** An image classifier: encoded images in, labels with confidences out, preprocessed as the manifest says. */
import sharp from "sharp";
import { EngineError } from "../../errors.ts";
import type { Feeds } from "../../execution/session-pool.ts";
import type { ImageClassificationManifest } from "../../registry/manifest.ts";
import type { BatchTiming } from "../../scheduling/batcher.ts";
import type { RowBatcher, RowResult } from "../../scheduling/row-batcher.ts";
import { prepareImage, type DecodeLimits } from "./preprocess.ts";

/** An image to classify, and what to call it in errors. */
export type ImageInput = { bytes: Uint8Array; label: string };

export type ScoredLabel = { label: string; confidence: number };

export type ImageClassification = ScoredLabel & {
  /** The best `topK` labels, most confident first. */
  top_k: ScoredLabel[];
  /** The image's size as received (after EXIF rotation). */
  width: number;
  height: number;
};

/** One result per image, in order, and where the time went (decoding, then the batch). */
export type ImageClassifications = { results: ImageClassification[]; timing: BatchTiming & { decodeMs: number } };

/** What routes need of an image model; ImageClassifier is the real one, tests may bring a fake. */
export interface ImageModel {
  readonly task: "image-classification";
  readonly manifest: ImageClassificationManifest;
  classify(images: readonly ImageInput[], topK: number): Promise<ImageClassifications>;
  infer(feeds: Feeds): Promise<RowResult>;
  readonly signature: Pick<RowBatcher, "inputs" | "outputs">;
  selfTest(): Promise<void>;
  close(): Promise<void>;
}

export class ImageClassifier implements ImageModel {
  readonly task = "image-classification" as const;
  /** [channels, height, width] or [height, width, channels]: one image's dimensions in the input tensor. */
  private readonly imageDims: number[];
  private testImage: Promise<Buffer> | undefined;

  constructor(
    readonly manifest: ImageClassificationManifest,
    private readonly batcher: RowBatcher,
    private readonly limits: DecodeLimits,
  ) {
    const p = manifest.preprocessing;
    const channels = p.color === "rgb" ? 3 : 1;
    this.imageDims = p.layout === "NCHW" ? [channels, p.height, p.width] : [p.height, p.width, channels];
    checkSignature(manifest, batcher, this.imageDims);
  }

  get signature() {
    return this.batcher;
  }

  /** Decodes every image (all at once, off the event loop), then runs them as one request of the batcher. */
  async classify(images: readonly ImageInput[], topK: number): Promise<ImageClassifications> {
    if (images.length === 0) throw new EngineError("invalid_input", "no images to classify");
    const started = performance.now();
    const prepared = await Promise.all(images.map((image) => prepareImage(image.bytes, this.manifest.preprocessing, this.limits, image.label)));
    const decodeMs = performance.now() - started;
    const size = prepared[0]!.row.length;
    const data = new Float32Array(size * prepared.length);
    prepared.forEach((image, i) => data.set(image.row, i * size));
    const { input, output, scores } = this.manifest.onnx;
    const { outputs, timing } = await this.batcher.run({ [input]: { type: "float32", dims: [prepared.length, ...this.imageDims], data } });
    const labels = this.manifest.labels;
    const values = outputs[output];
    if (!values || values.data.length !== prepared.length * labels.length) {
      throw new EngineError("inference_failed", `output '${output}' does not hold ${prepared.length}x${labels.length} scores`);
    }
    const k = Math.min(Math.max(1, topK), labels.length);
    const results = prepared.map((image, i) => {
      const row = Array.from((values.data as Float32Array).subarray(i * labels.length, (i + 1) * labels.length));
      const probabilities = scores === "logits" ? softmax(row) : row;
      const ranked = probabilities
        .map((confidence, index) => ({ label: labels[index]!, confidence }))
        .sort((a, b) => b.confidence - a.confidence)
        .slice(0, k);
      return { ...ranked[0]!, top_k: ranked, width: image.width, height: image.height };
    });
    return { results, timing: { ...timing, decodeMs } };
  }

  infer(feeds: Feeds): Promise<RowResult> {
    return this.batcher.run(feeds);
  }

  /**
   * Decodes and classifies a plain image of the manifest's background: the whole path, sharp included. The image is
   * encoded once; readiness probes run this up to once a second.
   */
  async selfTest(): Promise<void> {
    const { width, height, background } = this.manifest.preprocessing;
    this.testImage ??= sharp({ create: { width, height, channels: 3, background: { r: background[0], g: background[1], b: background[2] } } })
      .png()
      .toBuffer();
    const { results } = await this.classify([{ bytes: await this.testImage, label: "the self-test image" }], 1);
    if (!Number.isFinite(results[0]!.confidence)) throw new EngineError("inference_failed", "self-test produced a non-finite confidence");
  }

  close() {
    return this.batcher.close();
  }
}

function softmax(logits: number[]): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

/** Fails the load when the graph disagrees with the manifest: names, rank, image size, channels or label count. */
function checkSignature(manifest: ImageClassificationManifest, graph: Pick<RowBatcher, "inputs" | "outputs">, imageDims: number[]) {
  const problem = (msg: string) => new EngineError("load_failed", `${manifest.name}: ${msg}`);
  const input = graph.inputs.find((i) => i.name === manifest.onnx.input);
  const output = graph.outputs.find((o) => o.name === manifest.onnx.output);
  if (!input) throw problem(`the graph has no input '${manifest.onnx.input}' (it has ${graph.inputs.map((i) => i.name).join(", ")})`);
  if (!output) throw problem(`the graph has no output '${manifest.onnx.output}' (it has ${graph.outputs.map((o) => o.name).join(", ")})`);
  if (graph.inputs.length !== 1) throw problem(`the graph takes ${graph.inputs.length} inputs; an image classifier takes one`);
  if (input.type !== "float32") throw problem(`input '${input.name}' is ${input.type}; image models take float32`);
  const p = manifest.preprocessing;
  const expected = `[batch, ${imageDims.join(", ")}] (${p.layout}, ${p.color}, ${p.width} x ${p.height})`;
  if (input.shape.length !== 4) throw problem(`input '${input.name}' has ${input.shape.length} dimensions; the manifest describes ${expected}`);
  imageDims.forEach((size, i) => {
    const got = input.shape[i + 1];
    if (typeof got === "number" && got >= 0 && got !== size) throw problem(`input '${input.name}' has shape [${input.shape.join(", ")}]; the manifest describes ${expected}`);
  });
  const width = output.shape[1];
  if (typeof width === "number" && width >= 0 && width !== manifest.labels.length) {
    throw problem(`the graph returns ${width} scores, the manifest lists ${manifest.labels.length} labels`);
  }
}
