/**
 * POST /v1/models/{name}/classify and POST /v1/classify over the real repository (digits, rgb32 and iris): real
 * labels from real images made in the test, and every way an upload can be refused.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import sharp from "sharp";
import { ModelRepository } from "../../../src/engine/registry/repository.ts";
import { testApp } from "../../helpers/app.ts";
import { engineOptions } from "../../helpers/engine.ts";
import { expectProblem } from "../../helpers/http.ts";
import { animatedGif, digitPng, imageModelsDir, noise, PDF, pngBomb, solid } from "../../helpers/images.ts";

type Scored = { label: string; confidence: number };
type Prediction = Scored & { filename: string | null; top_k: Scored[]; width: number; height: number };
type Single = Prediction & { model: string; version: string };
type Batch = { model: string; version: string; predictions: Prediction[] };

const RED = { r: 255, g: 0, b: 0 };
const GREEN = { r: 0, g: 255, b: 0 };
const BLUE = { r: 0, g: 0, b: 255 };

let repository: ModelRepository;
let app: ReturnType<typeof testApp>["app"];

beforeAll(async () => {
  repository = new ModelRepository(imageModelsDir(["iris"]), engineOptions());
  await repository.loadAll();
  ({ app } = testApp({ catalog: repository }));
});
afterAll(() => repository.close());

/** A multipart form with one `file` part per entry (or parts of other names). */
function form(files: { bytes: Uint8Array; name?: string; type?: string; field?: string }[]): FormData {
  const body = new FormData();
  for (const f of files) body.append(f.field ?? "file", new Blob([f.bytes], { type: f.type ?? "application/octet-stream" }), f.name ?? "upload");
  return body;
}

const post = (path: string, body: RequestInit["body"], headers: Record<string, string> = {}, on = app) => on.request(path, { method: "POST", body, headers });

async function ok<T>(res: Response): Promise<T> {
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status: 200 });
  expect(res.headers.get("content-type")).toBe("application/json");
  return JSON.parse(text) as T;
}

describe("classification", () => {
  test("each held-out digit comes back as its own label, with top_k sorted and the size received", async () => {
    for (let n = 0; n <= 9; n++) {
      const body = await ok<Single>(await post("/v1/models/digits/classify", form([{ bytes: await digitPng(n), name: `digit-${n}.png`, type: "image/png" }])));
      expect(Object.keys(body)).toEqual(["model", "version", "filename", "label", "confidence", "top_k", "width", "height"]);
      expect(body).toMatchObject({ model: "digits", version: "1.0.0", filename: `digit-${n}.png`, label: String(n), width: 28, height: 28 });
      expect(body.confidence).toBeGreaterThan(0.5);
      expect(body.top_k).toHaveLength(5);
      expect(body.top_k[0]).toEqual({ label: String(n), confidence: body.confidence });
      const confidences = body.top_k.map((s) => s.confidence);
      expect(confidences).toEqual([...confidences].sort((a, b) => b - a));
    }
  });

  test("several file parts are a batch: predictions in the order sent, model and version once at the top", async () => {
    const order = [3, 8, 0, 5, 1];
    const files = await Promise.all(order.map(async (n) => ({ bytes: await digitPng(n), name: `d${n}.png` })));
    const body = await ok<Batch>(await post("/v1/models/digits/classify?top_k=2", form(files)));
    expect(Object.keys(body)).toEqual(["model", "version", "predictions"]);
    expect(body).toMatchObject({ model: "digits", version: "1.0.0" });
    expect(body.predictions.map((p) => [p.filename, p.label, p.top_k.length])).toEqual(order.map((n) => [`d${n}.png`, String(n), 2]));
  });

  test("a raw image body, whatever it is declared as: filename null, or Content-Disposition's", async () => {
    const png = await digitPng(4);
    for (const type of ["image/png", "image/jpeg", "image/anything", "application/octet-stream"]) {
      expect(await ok<Single>(await post("/v1/models/digits/classify", png, { "Content-Type": type }))).toMatchObject({ label: "4", filename: null });
    }
    // No Content-Type at all: the bytes say what it is.
    expect(await ok<Single>(await post("/v1/models/digits/classify", new Blob([png])))).toMatchObject({ label: "4" });
    const named = await ok<Single>(await post("/v1/models/digits/classify", png, { "Content-Type": "image/png", "Content-Disposition": 'attachment; filename="four.png"' }));
    expect(named.filename).toBe("four.png");
    const encoded = await post("/v1/models/digits/classify", png, { "Content-Type": "image/png", "Content-Disposition": "inline; filename*=UTF-8''vier%20%C3%BC.png" });
    expect((await ok<Single>(encoded)).filename).toBe("vier ü.png");
  });

  test("/v1/classify uses the first image model in the folder (digits), or DEFAULT_IMAGE_MODEL", async () => {
    expect(await ok<Single>(await post("/v1/classify", await digitPng(6), { "Content-Type": "image/png" }))).toMatchObject({ model: "digits", label: "6" });
    const { app: rgbDefault } = testApp({ catalog: repository, env: { DEFAULT_IMAGE_MODEL: "rgb32" } });
    const red = await solid("png", 10, 10, RED);
    expect(await ok<Single>(await post("/v1/classify", red, { "Content-Type": "image/png" }, rgbDefault))).toMatchObject({ model: "rgb32", label: "red" });
  });

  test("rgb32 (NHWC, RGB, cover, mean/std, logits) from its manifest alone: a 50 x 40 red JPEG is red", async () => {
    const body = await ok<Single>(await post("/v1/models/rgb32/classify", form([{ bytes: await solid("jpeg", 50, 40, RED), name: "red.jpg" }])));
    expect(body).toMatchObject({ model: "rgb32", label: "red", width: 50, height: 40 });
    // Softmax of logits: probabilities summing to 1; top_k defaults to every label when there are fewer than 5.
    expect(body.top_k.map((s) => s.label).sort()).toEqual(["blue", "gray", "green", "red"]);
    expect(body.top_k.reduce((sum, s) => sum + s.confidence, 0)).toBeCloseTo(1, 5);
  });

  test("WebP and GIF inputs", async () => {
    const webp = await ok<Single>(await post("/v1/models/rgb32/classify", await solid("webp", 33, 17, GREEN), { "Content-Type": "image/webp" }));
    expect(webp).toMatchObject({ label: "green", width: 33, height: 17 });
    const gif = await ok<Single>(await post("/v1/models/rgb32/classify", await solid("gif", 40, 64, BLUE), { "Content-Type": "image/gif" }));
    expect(gif).toMatchObject({ label: "blue", width: 40, height: 64 });
  });

  test("an animated GIF is classified by its first frame, and reports one frame's size", async () => {
    const redFirst = await animatedGif(24, 16, [[255, 0, 0], [0, 0, 255], [0, 255, 0]]);
    const blueFirst = await animatedGif(24, 16, [[0, 0, 255], [255, 0, 0], [0, 255, 0]]);
    expect((await sharp(redFirst).metadata()).pages).toBe(3);
    expect(await ok<Single>(await post("/v1/models/rgb32/classify", redFirst, { "Content-Type": "image/gif" }))).toMatchObject({ label: "red", width: 24, height: 16 });
    expect(await ok<Single>(await post("/v1/models/rgb32/classify", blueFirst, { "Content-Type": "image/gif" }))).toMatchObject({ label: "blue", width: 24, height: 16 });
  });

  test("an EXIF-rotated JPEG is turned upright first, and reports the rotated size", async () => {
    // A 7 on a 28 x 40 page, stored turned a quarter to the left, with the EXIF orientation (6) that turns it back.
    const upright = await sharp(await digitPng(7)).extend({ bottom: 12, background: "white" }).toBuffer();
    const stored = await sharp(upright).rotate(-90).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
    expect(await sharp(stored).metadata()).toMatchObject({ width: 40, height: 28, orientation: 6 });
    expect(await ok<Single>(await post("/v1/models/digits/classify", stored, { "Content-Type": "image/jpeg" }))).toMatchObject({ label: "7", width: 28, height: 40 });
  });

  test("a PNG with alpha is flattened on the manifest's background (white for digits)", async () => {
    // Ink as opacity over transparent black: only flattening onto white gives back the dark-on-white digit.
    const grey = await sharp(await digitPng(3)).greyscale().raw().toBuffer({ resolveWithObject: true });
    const rgba = Buffer.alloc(grey.info.width * grey.info.height * 4);
    grey.data.forEach((v, i) => (rgba[i * 4 + 3] = 255 - v));
    const png = await sharp(rgba, { raw: { width: grey.info.width, height: grey.info.height, channels: 4 } }).png().toBuffer();
    expect(await sharp(png).metadata()).toMatchObject({ hasAlpha: true, channels: 4 });
    expect(await ok<Single>(await post("/v1/models/digits/classify", png, { "Content-Type": "image/png" }))).toMatchObject({ label: "3" });
  });

  test("a one-channel grayscale picture feeds all three channels of the RGB model", async () => {
    const grey = await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: 150, g: 150, b: 150 } } }).toColourspace("b-w").png().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    expect(await ok<Single>(await post("/v1/models/rgb32/classify", grey, { "Content-Type": "image/png" }))).toMatchObject({ label: "gray" });
  });

  test("bodies up to IMAGE_MAX_BYTES are read, past the server's JSON body limit", async () => {
    const big = await noise("png", 1024, 768);
    expect(big.length).toBeGreaterThan(1 << 20);
    expect(await ok<Single>(await post("/v1/models/rgb32/classify", big, { "Content-Type": "image/png" }))).toMatchObject({ width: 1024, height: 768 });
  });

  test("top_k: how many labels, at most the model's", async () => {
    const png = await digitPng(2);
    expect((await ok<Single>(await post("/v1/models/digits/classify?top_k=1", png, { "Content-Type": "image/png" }))).top_k).toHaveLength(1);
    expect((await ok<Single>(await post("/v1/models/digits/classify?top_k=50", png, { "Content-Type": "image/png" }))).top_k).toHaveLength(10);
    for (const bad of ["0", "-1", "1.5", "abc", "0x2", "1e1", " 3"]) {
      const res = await post(`/v1/models/digits/classify?top_k=${encodeURIComponent(bad)}`, png, { "Content-Type": "image/png" });
      const problem = await expectProblem(res, 422, "/v1/models/digits/classify");
      expect({ bad, paths: problem.errors?.map((e) => e.path) }).toEqual({ bad, paths: ["query.top_k"] });
    }
  });

  test("Server-Timing reports decode, queue and inference", async () => {
    const res = await post("/v1/models/digits/classify", await digitPng(1), { "Content-Type": "image/png" });
    expect(res.status).toBe(200);
    const names = (res.headers.get("server-timing") ?? "").split(", ").map((e) => e.split(";")[0]);
    expect(names).toEqual(["decode", "queue", "inference", "total"]);
  });
});

describe("refusals", () => {
  const PATH = "/v1/models/digits/classify";

  test("the type is read from the bytes: a PDF named .png, declared image/png, is 415 naming the file", async () => {
    const problem = await expectProblem(await post(PATH, form([{ bytes: PDF, name: "scan.png", type: "image/png" }])), 415, PATH);
    expect(problem.detail).toStartWith("file 'scan.png' is a PDF document; send a PNG, JPEG, GIF or WebP image");
    const raw = await expectProblem(await post(PATH, PDF, { "Content-Type": "image/png" }), 415, PATH);
    expect(raw.detail).toStartWith("the body is a PDF document");
    // In a batch, the file is named by its place as well.
    const files = [{ bytes: await digitPng(1), name: "one.png" }, { bytes: new TextEncoder().encode("hello"), name: "two.png" }];
    expect((await expectProblem(await post(PATH, form(files)), 415, PATH)).detail).toStartWith("file 2 ('two.png') is not an image of a type this server reads");
  });

  test("a body that is neither a form nor an image is 415 saying what to send", async () => {
    for (const type of ["application/json", "text/plain", "application/pdf"]) {
      const problem = await expectProblem(await post(PATH, '{"file": "x"}', { "Content-Type": type }), 415, PATH);
      expect(problem.detail).toContain(`The body is '${type}', not an image`);
      expect(problem.detail).toContain("multipart/form-data (a part named 'file'");
    }
    // What curl --data-binary sends without -H.
    const curl = await expectProblem(await post(PATH, await digitPng(1), { "Content-Type": "application/x-www-form-urlencoded" }), 415, PATH);
    expect(curl.detail).toContain("-H 'Content-Type: image/png'");
    const gzip = await expectProblem(await post(PATH, await digitPng(1), { "Content-Type": "image/png", "Content-Encoding": "gzip" }), 415, PATH);
    expect(gzip.detail).toStartWith("Content-Encoding 'gzip' is not accepted");
  });

  test("over IMAGE_MAX_BYTES is 413: by Content-Length before the body is read, and a chunked body as it is counted", async () => {
    const { app: small } = testApp({ catalog: repository, env: { IMAGE_MAX_BYTES: "2000" } });
    const big = await noise("png", 64, 64);
    expect(big.length).toBeGreaterThan(2000);
    const declared = await post(PATH, big, { "Content-Type": "image/png", "Content-Length": String(big.length) }, small);
    expect((await expectProblem(declared, 413, PATH)).detail).toBe("The request body is larger than 2000 bytes.");
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < big.length; i += 500) controller.enqueue(big.subarray(i, i + 500));
        controller.close();
      },
    });
    const streamed = await small.request(PATH, { method: "POST", body: chunked, headers: { "Content-Type": "image/png" }, duplex: "half" } as RequestInit);
    await expectProblem(streamed, 413, PATH);
    // Under the limit, the same app classifies.
    expect(await ok<Single>(await post(PATH, await digitPng(9), { "Content-Type": "image/png" }, small))).toMatchObject({ label: "9" });
  });

  test("a decompression bomb (a 20,000 x 20,000 PNG of about 100 bytes) is 413 from its header, before decoding", async () => {
    const bomb = pngBomb(20_000, 20_000);
    expect(bomb.length).toBeLessThan(200);
    const started = performance.now();
    const problem = await expectProblem(await post(PATH, form([{ bytes: bomb, name: "bomb.png" }])), 413, PATH);
    expect(problem.detail).toBe("file 'bomb.png' is 20000 x 20000 pixels (400,000,000); the most this server decodes is 25,000,000 pixels");
    expect(problem.type).toBe("/problems/too-large");
    // Decoding 400 M pixels would take seconds and 400 MB; the header alone takes next to nothing.
    expect(performance.now() - started).toBeLessThan(1000);
    // The same file claiming fewer pixels gets as far as the decoder, which finds the rows missing.
    const small = await expectProblem(await post(PATH, pngBomb(100, 100), { "Content-Type": "image/png" }), 422, PATH);
    expect(small.detail).toContain("truncated or corrupt");
    // A complete, valid image of 6000 x 5000 zeros: 30 MB of pixels in about 30 KB.
    const whole = pngBomb(6000, 5000, true);
    expect(whole.length).toBeLessThan(100_000);
    const refused = await expectProblem(await post(PATH, whole, { "Content-Type": "image/png" }), 413, PATH);
    expect(refused.detail).toBe("the body is 6000 x 5000 pixels (30,000,000); the most this server decodes is 25,000,000 pixels");
  });

  test("truncated or corrupt images are 422", async () => {
    const png = await noise("png", 64, 64);
    const jpeg = await noise("jpeg", 64, 64);
    const corrupt = Buffer.from(png);
    corrupt.fill(0x55, 60, 300);
    const cases: [string, Uint8Array, string][] = [
      ["half.png", png.subarray(0, png.length / 2), "PNG"],
      ["half.jpg", jpeg.subarray(0, jpeg.length / 2), "JPEG"],
      ["signature.png", png.subarray(0, 8), "PNG"],
      ["corrupt.png", corrupt, "PNG"],
      ["half.gif", (await noise("gif", 64, 64)).subarray(0, 200), "GIF"],
      ["half.webp", (await noise("webp", 64, 64)).subarray(0, 100), "WEBP"],
    ];
    for (const [name, bytes, type] of cases) {
      const problem = await expectProblem(await post(PATH, form([{ bytes, name }])), 422, PATH);
      expect({ name, detail: problem.detail }).toEqual({ name, detail: expect.stringContaining(`file '${name}' is not a readable ${type} image (truncated or corrupt)`) });
    }
    const empty = await expectProblem(await post(PATH, new Uint8Array(), { "Content-Type": "image/png" }), 422, PATH);
    expect(empty.detail).toBe("the body is empty (0 bytes)");
  });

  test("no file, too many, a wrong field name or a text field is 422 naming the field", async () => {
    const digit = await digitPng(1);
    const wrong = await expectProblem(await post(PATH, form([{ bytes: digit, field: "image" }])), 422, PATH);
    expect(wrong.errors).toEqual([{ path: "file", message: "the form has no 'file' part (it has 'image'); send each image as a part named 'file'" }]);
    const onlyText = new FormData();
    onlyText.append("name", "seven");
    expect((await expectProblem(await post(PATH, onlyText), 422, PATH)).errors).toEqual([
      { path: "file", message: "the form has no 'file' part (it has 'name'); send each image as a part named 'file'" },
    ]);
    const many = await expectProblem(await post(PATH, form(Array.from({ length: 17 }, () => ({ bytes: digit })))), 422, PATH);
    expect(many.errors).toEqual([{ path: "file", message: "holds 17 files; at most 16 may be sent at once" }]);
    const text = new FormData();
    text.append("file", "digit.png");
    expect((await expectProblem(await post(PATH, text), 422, PATH)).errors![0]!.path).toBe("file");
  });

  test("a multipart body that cannot be parsed is 400", async () => {
    const res = await post(PATH, "this is not multipart", { "Content-Type": "multipart/form-data; boundary=xyz" });
    expect((await expectProblem(res, 400, PATH)).type).toBe("/problems/malformed-multipart");
  });

  test("a model that is not an image model is the wrong_task 422; an unknown one 404", async () => {
    const digit = await digitPng(1);
    const wrong = await expectProblem(await post("/v1/models/iris/classify", digit, { "Content-Type": "image/png" }), 422, "/v1/models/iris/classify");
    expect(wrong).toMatchObject({ type: "/problems/wrong-task", detail: "model 'iris' is for tabular-classification, not image-classification" });
    await expectProblem(await post("/v1/models/nope/classify", digit, { "Content-Type": "image/png" }), 404, "/v1/models/nope/classify");
  });

  test("/v1/classify on a server without image models is a 404 saying so", async () => {
    const { app: tabularOnly } = testApp();
    const problem = await expectProblem(await post("/v1/classify", await digitPng(1), { "Content-Type": "image/png" }, tabularOnly), 404, "/v1/classify");
    expect(problem.detail).toBe("this server has no image-classification model");
  });
});

describe("the OpenAPI document", () => {
  type Operation = { parameters?: { name: string; in: string }[]; requestBody: { content: Record<string, { schema: Record<string, unknown> }> }; responses: Record<string, unknown>; security: unknown[] };
  test("both routes document multipart and raw image bodies, top_k, both answers and every error status", async () => {
    const doc = (await (await app.request("/doc")).json()) as { paths: Record<string, { post: Operation }>; components: { schemas: Record<string, unknown> } };
    for (const path of ["/v1/classify", "/v1/models/{name}/classify"]) {
      const op = doc.paths[path]!.post;
      expect(Object.keys(op.requestBody.content).sort()).toEqual(["application/octet-stream", "image/gif", "image/jpeg", "image/png", "image/webp", "multipart/form-data"]);
      expect(op.requestBody.content["multipart/form-data"]!.schema).toMatchObject({ properties: { file: { type: "array", items: { type: "string", format: "binary" }, maxItems: 16 } } });
      expect(op.parameters?.find((p) => p.name === "top_k")).toMatchObject({ in: "query" });
      expect(Object.keys(op.responses).sort()).toEqual(["200", "400", "401", "403", "404", "413", "415", "422", "429", "500", "503"]);
      expect(JSON.stringify(op.security)).toContain("predict");
    }
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(["ImageClassification", "ImageClassificationBatch", "ImagePrediction"]));
  });
});
