/**
 * Images for the image-classification tests, made in the test with sharp (or byte by byte, where sharp would refuse
 * to write them), and a models folder with the image models.
 */
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import sharp from "sharp";
import { modelsDirWith } from "./models-dir.ts";

export const IMAGES_DIR = join(import.meta.dir, "..", "fixtures", "images");
export const RGB32_DIR = join(import.meta.dir, "..", "fixtures", "models", "rgb32");

/** A models folder with links to models/digits, the rgb32 fixture and `others` from models/ (iris, say). */
export function imageModelsDir(others: string[] = []): string {
  return modelsDirWith(["digits", ...others], { rgb32: RGB32_DIR });
}

/** tests/fixtures/images/digit-<n>.png: a held-out 28 x 28 grayscale digit, dark on white. */
export function digitPng(n: number): Promise<Uint8Array> {
  return Bun.file(join(IMAGES_DIR, `digit-${n}.png`)).bytes();
}

export type Format = "png" | "jpeg" | "webp" | "gif";

/** A solid-colour picture of `width` x `height` in `format`. */
export function solid(format: Format, width: number, height: number, colour: { r: number; g: number; b: number }): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: colour } })
    .toFormat(format, format === "jpeg" ? { quality: 95 } : {})
    .toBuffer();
}

/** A picture of noise (which compresses badly: a large file for its size). */
export function noise(format: Format, width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: "black", noise: { type: "gaussian", mean: 128, sigma: 40 } } })
    .toFormat(format)
    .toBuffer();
}

/** An animated GIF whose frames are solid `colours`, each `width` x `height`: a tall raw image cut into pages. */
export function animatedGif(width: number, height: number, colours: [number, number, number][]): Promise<Buffer> {
  const frame = width * height * 3;
  const pixels = Buffer.alloc(frame * colours.length);
  colours.forEach(([r, g, b], i) => {
    for (let p = 0; p < width * height; p++) pixels.set([r, g, b], i * frame + p * 3);
  });
  return sharp(pixels, { raw: { width, height: height * colours.length, channels: 3, pageHeight: height } })
    .gif({ loop: 0, delay: colours.map(() => 100) })
    .toBuffer();
}

/** A PNG chunk: length, type, data, and the CRC of type and data. */
function pngChunk(type: string, data: Uint8Array): Buffer {
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, "latin1");
  chunk.set(data, 8);
  chunk.writeUInt32BE(Bun.hash.crc32(chunk.subarray(4, 8 + data.length)) >>> 0, 8 + data.length);
  return chunk;
}

/**
 * A decompression bomb: a valid PNG header claiming `width` x `height` grayscale pixels, and one zero row of image
 * data: about a hundred bytes that would take width x height bytes to decode. With `complete`, every row is there
 * (all zero, compressed about a thousand to one): a valid image.
 */
export function pngBomb(width: number, height: number, complete = false): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // grayscale
  // Each row: the filter byte, then the pixels.
  const data = new Uint8Array((width + 1) * (complete ? height : 1));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk("IHDR", header), pngChunk("IDAT", deflateSync(data, { level: 9 })), pngChunk("IEND", new Uint8Array())]);
}

/** The first bytes of a PDF document, to send under an image's name and type. */
export const PDF = Buffer.from("%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");
