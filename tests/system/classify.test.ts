/**
 * Image classification against the real server over real sockets: uploads from many clients at once (each gets its
 * own label back), a declared length over IMAGE_MAX_BYTES refused before the body is sent, a chunked body refused as
 * it is counted, a decompression bomb, and the predict scope.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rawExchange } from "../helpers/http.ts";
import { digitPng, imageModelsDir, pngBomb, solid } from "../helpers/images.ts";
import { keysFile } from "../helpers/keys.ts";
import { startServer, type RunningServer } from "../helpers/server.ts";

const TIMEOUT = 60_000;
const MAX_BYTES = 200_000;

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ MODELS_DIR: imageModelsDir(["iris"]), IMAGE_MAX_BYTES: String(MAX_BYTES) });
}, TIMEOUT);
afterAll(async () => {
  await server?.stop("SIGKILL");
}, TIMEOUT);

type Single = { model: string; label: string; filename: string | null; width: number; height: number };

/** A form with one `file` part. */
function formWith(bytes: Uint8Array, filename: string): FormData {
  const form = new FormData();
  form.append("file", new Blob([bytes]), filename);
  return form;
}

describe("POST /v1/classify on the real server", () => {
  test("32 uploads at once, multipart and raw: each comes back with its own digit", async () => {
    const digits = await Promise.all(Array.from({ length: 10 }, (_, n) => digitPng(n)));
    const answers = await Promise.all(
      Array.from({ length: 32 }, async (_, i) => {
        const n = i % 10;
        const init: RequestInit = i % 2 === 0 ? { method: "POST", body: formWith(digits[n]!, `digit-${n}.png`) } : { method: "POST", body: digits[n]!, headers: { "Content-Type": "image/png" } };
        const res = await fetch(`${server.url}/v1/classify`, init);
        return { n, status: res.status, body: (await res.json()) as Single };
      }),
    );
    for (const { n, status, body } of answers) expect({ status, label: body.label, model: body.model }).toEqual({ status: 200, label: String(n), model: "digits" });
  }, TIMEOUT);

  test("a Content-Length over IMAGE_MAX_BYTES is answered 413 before the body is sent", async () => {
    // Only the headers go out: the answer must not wait for the 50 MB they announce.
    const head = `POST /v1/models/digits/classify HTTP/1.1\r\nHost: ${new URL(server.url).host}\r\nContent-Type: image/png\r\nContent-Length: 50000000\r\n\r\n`;
    const answer = await rawExchange(server.url, head);
    expect(answer).toStartWith("HTTP/1.1 413");
    expect(answer.toLowerCase()).toContain("content-type: application/problem+json");
  }, TIMEOUT);

  test("a chunked body over IMAGE_MAX_BYTES is 413; a chunked image under it is classified", async () => {
    const chunks = (bytes: Uint8Array, size: number) =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < bytes.length; i += size) controller.enqueue(bytes.subarray(i, i + size));
          controller.close();
        },
      });
    const big = new Uint8Array(MAX_BYTES + 1);
    big.set(await digitPng(1));
    const over = await fetch(`${server.url}/v1/models/digits/classify`, { method: "POST", body: chunks(big, 16_384), headers: { "Content-Type": "image/png" }, duplex: "half" } as RequestInit);
    expect(over.status).toBe(413);
    const under = await fetch(`${server.url}/v1/models/digits/classify`, { method: "POST", body: chunks(await digitPng(8), 100), headers: { "Content-Type": "image/png" }, duplex: "half" } as RequestInit);
    expect(under.status).toBe(200);
    expect(((await under.json()) as Single).label).toBe("8");
  }, TIMEOUT);

  test("a decompression bomb is 413, and the server goes on classifying", async () => {
    const res = await fetch(`${server.url}/v1/models/rgb32/classify`, { method: "POST", body: formWith(pngBomb(20_000, 20_000), "bomb.png") });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { detail: string }).detail).toContain("20000 x 20000");
    const red = await fetch(`${server.url}/v1/models/rgb32/classify`, { method: "POST", body: await solid("jpeg", 50, 40, { r: 255, g: 0, b: 0 }), headers: { "Content-Type": "image/jpeg" } });
    expect(((await red.json()) as Single).label).toBe("red");
  }, TIMEOUT);
});

describe("with API keys", () => {
  let keyed: RunningServer;
  let keys: { predict: string; generate: string };
  beforeAll(async () => {
    const written = keysFile([
      { name: "predict", scopes: ["predict"] },
      { name: "generate", scopes: ["generate"] },
    ]);
    keys = written.secret;
    keyed = await startServer({ MODELS_DIR: imageModelsDir(["iris"]), API_KEYS_FILE: written.path });
  }, TIMEOUT);
  afterAll(async () => {
    await keyed?.stop("SIGKILL");
  }, TIMEOUT);

  test("classification needs a key with the predict scope", async () => {
    const send = async (headers: Record<string, string>) =>
      (await fetch(`${keyed.url}/v1/classify`, { method: "POST", body: await digitPng(5), headers: { "Content-Type": "image/png", ...headers } })).status;
    expect(await send({})).toBe(401);
    expect(await send({ "X-API-Key": keys.generate })).toBe(403);
    expect(await send({ "X-API-Key": keys.predict })).toBe(200);
  }, TIMEOUT);
});
