/**
 * From an uploaded file to one row of a model's input, as its manifest says: the type decided by the file's own
 * bytes, the pixel count read from its header and refused before anything is decoded, then sharp (libvips, on
 * libuv's thread pool, off the event loop) rotates by EXIF, flattens alpha, converts and resizes.
 */
import sharp, { type Metadata, type OutputInfo } from "sharp";
import { EngineError } from "../../errors.ts";
import type { ImagePreprocessing } from "../../registry/manifest.ts";

// A server decodes many small images at once, each seen once: one libvips thread per image (the libuv pool runs
// images side by side) and no operation cache (it never hits) cost less CPU per image. docs/performance.md has
// the figures.
sharp.concurrency(1);
sharp.cache(false);

export type ImageType = "png" | "jpeg" | "gif" | "webp";

/** A few other signatures, so that a refusal can say what the file looks like instead. */
const OTHER_SIGNATURES: [string, number[]][] = [
  ["a PDF document", [0x25, 0x50, 0x44, 0x46]],
  ["a ZIP archive", [0x50, 0x4b, 0x03, 0x04]],
  ["a gzip file", [0x1f, 0x8b]],
  ["a BMP image", [0x42, 0x4d]],
  ["a TIFF image", [0x49, 0x49, 0x2a, 0x00]],
  ["a TIFF image", [0x4d, 0x4d, 0x00, 0x2a]],
];

const startsWith = (bytes: Uint8Array, signature: number[], at = 0) => signature.every((b, i) => bytes[at + i] === b);
const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));

/** The image type by magic bytes, whatever the file's name or declared type say; undefined for anything else. */
export function sniffImageType(bytes: Uint8Array): ImageType | undefined {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "png";
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return "jpeg";
  if (startsWith(bytes, ascii("GIF87a")) || startsWith(bytes, ascii("GIF89a"))) return "gif";
  if (startsWith(bytes, ascii("RIFF")) && startsWith(bytes, ascii("WEBP"), 8)) return "webp";
  return undefined;
}

/** What a file that is not an image looks like, for the refusal. */
function describeOther(bytes: Uint8Array): string {
  const known = OTHER_SIGNATURES.find(([, signature]) => startsWith(bytes, signature));
  return known ? known[0] : "not an image of a type this server reads";
}

export type DecodeLimits = { maxPixels: number };

/** One preprocessed image: its row of the input tensor, and the size it arrived in (after EXIF rotation). */
export type PreparedImage = { row: Float32Array; width: number; height: number };

/**
 * Decodes `bytes` into one row of the model's input, laid out as `spec.layout` says without the batch dimension.
 * Throws unsupported_media_type (not an image of a known type), too_large (more pixels than `limits.maxPixels`,
 * from the header alone) or invalid_input (truncated or corrupt), each naming `label`.
 */
export async function prepareImage(bytes: Uint8Array, spec: ImagePreprocessing, limits: DecodeLimits, label = "the image"): Promise<PreparedImage> {
  // An empty file is not of the wrong type: there is nothing in it to classify.
  if (bytes.length === 0) throw new EngineError("invalid_input", `${label} is empty (0 bytes)`);
  const type = sniffImageType(bytes);
  if (!type) {
    throw new EngineError("unsupported_media_type", `${label} is ${describeOther(bytes)}; send a PNG, JPEG, GIF or WebP image (the type is read from the bytes, not from a name or a declared type)`);
  }
  // Only the first frame of an animated image (pages: 1). failOn "error" refuses truncated and corrupt files but
  // not the harmless warnings many cameras' JPEGs raise. The header is read without a pixel limit so that the
  // refusal below can give the size; limitInputPixels then guards the decoder as well.
  const input = (limitInputPixels: number | false) => sharp(bytes, { pages: 1, limitInputPixels, failOn: "error" });
  let meta: Metadata;
  try {
    meta = await input(false).metadata();
  } catch (error) {
    throw undecodable(label, type, error);
  }
  const frameHeight = meta.pageHeight ?? meta.height;
  if (!meta.width || !frameHeight) throw new EngineError("invalid_input", `${label}: the ${type.toUpperCase()} header gives no size`);
  const pixels = meta.width * frameHeight;
  if (pixels > limits.maxPixels) {
    throw new EngineError(
      "too_large",
      `${label} is ${meta.width} x ${frameHeight} pixels (${pixels.toLocaleString("en")}); the most this server decodes is ${limits.maxPixels.toLocaleString("en")} pixels`,
    );
  }
  const rotated = (meta.orientation ?? 1) >= 5;
  const [width, height] = rotated ? [frameHeight, meta.width] : [meta.width, frameHeight];

  const channels = spec.color === "rgb" ? 3 : 1;
  const [r, g, b] = spec.background;
  const background = { r, g, b, alpha: 1 };
  let pipeline = input(limits.maxPixels)
    .rotate()
    .flatten({ background })
    .resize(spec.width, spec.height, { fit: ({ stretch: "fill", contain: "contain", cover: "cover" } as const)[spec.resize], background });
  pipeline = channels === 1 ? pipeline.greyscale() : pipeline.toColourspace("srgb");
  let pixelsOut: { data: Buffer; info: OutputInfo };
  try {
    pixelsOut = await pipeline.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw undecodable(label, type, error);
  }
  return { row: toRow(pixelsOut.data, pixelsOut.info.channels, spec), width, height };
}

function undecodable(label: string, type: ImageType, error: unknown): EngineError {
  // libvips's first line, without the colon it leaves when the decoder's own message is empty.
  const reason = (error instanceof Error ? error.message.split("\n")[0]! : String(error)).trim().replace(/:$/, "");
  if (/pixel limit/i.test(reason)) return new EngineError("too_large", `${label} has more pixels than this server decodes`);
  return new EngineError("invalid_input", `${label} is not a readable ${type.toUpperCase()} image (truncated or corrupt)${reason ? `: ${reason}` : ""}`);
}

/** Interleaved 0-255 pixels (HWC) to normalised floats in the manifest's layout. */
function toRow(data: Uint8Array, got: number, spec: ImagePreprocessing): Float32Array {
  const channels = spec.color === "rgb" ? 3 : 1;
  const size = spec.width * spec.height;
  const row = new Float32Array(size * channels);
  const mean = spec.mean ?? new Array<number>(channels).fill(0);
  const std = spec.std ?? new Array<number>(channels).fill(1);
  for (let c = 0; c < channels; c++) {
    const source = Math.min(c, got - 1); // a one-channel decode feeds every channel
    const scale = spec.scale / std[c]!;
    const shift = mean[c]! / std[c]!;
    for (let p = 0; p < size; p++) {
      const value = data[p * got + source]! * scale - shift;
      row[spec.layout === "NCHW" ? c * size + p : p * channels + c] = value;
    }
  }
  return row;
}
