/**
 * Image classification: POST /v1/models/digits/classify with a 28 x 28 PNG and with a 1024 x 768 JPEG that must be
 * resized, beside the raw ONNX run on the same tensor (no server, no decoding) measured in the same run. For each:
 * req/s and p99 (wrk), the server's CPU time per request, and the share of the request's time spent decoding (from
 * Server-Timing). Then /health latency while 8 clients upload the JPEG back to back, beside /health idle: decoding
 * runs on libvips's threads, so the event loop must stay free.
 */
import { spawn } from "bun";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { openSession } from "../src/engine/execution/onnx-session.ts";
import { readManifestOf } from "../src/engine/registry/manifest.ts";
import { prepareImage } from "../src/engine/tasks/image/preprocess.ts";
import { IMAGES_DIR, imageModelsDir } from "../tests/helpers/images.ts";
import { tempDir } from "../tests/helpers/models-dir.ts";
import { CONNECTIONS, DURATION, parseWrk, percentile, postScript, printTable, root, startServer, wrkCommand } from "./lib.ts";

const MODEL = "digits";
const UPLOADERS = 8;
const SAMPLES = 200;

type Image = { name: string; file: string; contentType: string; bytes: Uint8Array };

/** The two uploads: a held-out digit as it is, and the same digit as a 1024 x 768 photo-sized JPEG. */
async function images(): Promise<Image[]> {
  const png = join(IMAGES_DIR, "digit-7.png");
  const jpeg = join(tempDir("onnx-serve-bench-images-"), "digit-7.jpg");
  writeFileSync(jpeg, await sharp(png).resize(1024, 768, { fit: "contain", background: "white" }).jpeg({ quality: 90 }).toBuffer());
  return [
    { name: "28x28 PNG", file: png, contentType: "image/png", bytes: readFileSync(png) },
    { name: "1024x768 JPEG", file: jpeg, contentType: "image/jpeg", bytes: readFileSync(jpeg) },
  ];
}

/** Times `fn` over about `seconds`, after a warm-up; milliseconds per call, sorted. */
async function timed(fn: () => Promise<unknown>, seconds: number): Promise<number[]> {
  for (let i = 0; i < 20; i++) await fn();
  const times: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b);
}

/** The bare model on the image's own tensor, batch 1, one thread, as the server opens it; and decoding alone. */
async function raw(image: Image) {
  const dir = join(root, "models", MODEL);
  const manifest = readManifestOf(dir, "image-classification");
  const p = manifest.preprocessing;
  const limits = { maxPixels: 25_000_000 };
  const { row } = await prepareImage(image.bytes, p, limits);
  const channels = p.color === "rgb" ? 3 : 1;
  const dims = p.layout === "NCHW" ? [1, channels, p.height, p.width] : [1, p.height, p.width, channels];
  const session = await openSession(join(dir, "model.onnx"), 1);
  const feeds = { [manifest.onnx.input]: new ort.Tensor("float32", row, dims) };
  const run = await timed(() => session.run(feeds), 2);
  const decode = await timed(() => prepareImage(image.bytes, p, limits), 1);
  await session.release();
  return { run, decode };
}

/** The process's CPU time (user + system, every thread) in milliseconds, from /proc. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after "pid (comm) ", in clock ticks (100 a second).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Server-Timing entries by name, in milliseconds. */
function serverTiming(header: string | null): Record<string, number> {
  return Object.fromEntries((header ?? "").split(", ").map((entry) => [entry.split(";")[0]!, Number(/dur=([\d.]+)/.exec(entry)?.[1] ?? NaN)]));
}

/** SAMPLES uploads from UPLOADERS clients; the share of the server's time (Server-Timing total) spent decoding. */
async function decodeShare(url: string, image: Image): Promise<{ share: number; decodeMs: number }> {
  let decode = 0;
  let total = 0;
  let left = SAMPLES;
  await Promise.all(
    Array.from({ length: UPLOADERS }, async () => {
      while (left-- > 0) {
        const res = await fetch(url, { method: "POST", body: image.bytes, headers: { "Content-Type": image.contentType } });
        await res.arrayBuffer();
        const timing = serverTiming(res.headers.get("server-timing"));
        decode += timing.decode!;
        total += timing.total!;
      }
    }),
  );
  return { share: decode / total, decodeMs: decode / SAMPLES };
}

/** /health one request after another for `seconds`: milliseconds per answer, sorted. */
async function probeHealth(url: string, seconds: number): Promise<number[]> {
  return timed(() => fetch(`${url}/health`).then((r) => r.arrayBuffer()), seconds);
}

export async function benchImage() {
  const uploads = await images();
  const server = await startServer("src/main/index.ts", {
    MODELS_DIR: imageModelsDir(["iris"]),
    RATE_LIMIT_CAPACITY: "1000000000",
    RATE_LIMIT_REFILL_PER_SECOND: "1000000000",
    LOG_LEVEL: "info",
  });
  const url = `${server.url}/v1/models/${MODEL}/classify`;
  const rows: (string | number)[][] = [];
  let health: { idle: number[]; busy: number[]; uploads: ReturnType<typeof parseWrk> } | undefined;
  try {
    for (const image of uploads) {
      const script = postScript({ file: image.file, contentType: image.contentType });
      // A warm-up run, discarded.
      await spawn(wrkCommand(url, script), { stdout: "ignore" }).exited;
      const before = cpuMs(server.pid);
      const proc = spawn(wrkCommand(url, script), { stdout: "pipe" });
      const result = parseWrk(image.name, await new Response(proc.stdout).text());
      const cpu = (cpuMs(server.pid) - before) / Math.max(1, result.requests);
      const { share, decodeMs } = await decodeShare(url, image);
      const bare = await raw(image);
      rows.push([
        `${image.name}, server`,
        result.rps.toFixed(0),
        result.p99.toFixed(2),
        cpu.toFixed(2),
        `${(100 * share).toFixed(0)}% (${decodeMs.toFixed(2)} ms)`,
        result.errors,
      ]);
      rows.push([
        `${image.name}, raw ONNX run (same tensor)`,
        (1000 / percentile(bare.run, 50)).toFixed(0),
        percentile(bare.run, 99).toFixed(2),
        percentile(bare.run, 50).toFixed(2),
        `decode alone: ${percentile(bare.decode, 50).toFixed(2)} ms`,
        0,
      ]);
    }

    // /health idle, then while UPLOADERS clients send the JPEG back to back.
    const jpeg = uploads[1]!;
    const idle = await probeHealth(server.url, 2);
    const load = spawn(wrkCommand(url, postScript({ file: jpeg.file, contentType: jpeg.contentType }), UPLOADERS), { stdout: "pipe" });
    const loadText = new Response(load.stdout).text();
    const busy = await probeHealth(server.url, Number(DURATION) - 1);
    health = { idle, busy, uploads: parseWrk("uploads", await loadText) };
  } finally {
    server.stop();
  }

  printTable(["target (wrk -c" + CONNECTIONS + "; raw: batch 1, one thread)", "req/s", "p99 ms", "CPU ms/req", "decoding", "errors"], rows);
  const { idle, busy, uploads: load } = health!;
  console.log(
    `\n/health idle: p50 ${percentile(idle, 50).toFixed(2)} / p99 ${percentile(idle, 99).toFixed(2)} ms (n=${idle.length}); ` +
      `while ${UPLOADERS} clients upload 1024x768 JPEGs (${load.rps.toFixed(0)} req/s, ${load.errors} errors): ` +
      `p50 ${percentile(busy, 50).toFixed(2)} / p99 ${percentile(busy, 99).toFixed(2)} ms (n=${busy.length}; target p99 < 10 ms)`,
  );
}
