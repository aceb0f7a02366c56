import { describe, expect, test } from "bun:test";
import sharp from "sharp";
import { EngineError } from "../../../../../src/engine/errors.ts";
import { ImagePreprocessing } from "../../../../../src/engine/registry/manifest.ts";
import { prepareImage, sniffImageType } from "../../../../../src/engine/tasks/image/preprocess.ts";
import { animatedGif, noise, PDF, pngBomb, solid } from "../../../../helpers/images.ts";

const LIMITS = { maxPixels: 25_000_000 };
/** Raw 0-255 values, so that each test reads pixels straight from the row. */
const spec = (fields: Partial<ImagePreprocessing>) => ImagePreprocessing.parse({ layout: "NHWC", width: 2, height: 2, color: "rgb", scale: 1, ...fields });

/** A lossless PNG from rows of [r, g, b] pixels. */
function pixels(rows: [number, number, number][][]): Promise<Buffer> {
  const width = rows[0]!.length;
  return sharp(Buffer.from(rows.flat(2)), { raw: { width, height: rows.length, channels: 3 } })
    .png()
    .toBuffer();
}

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof EngineError)) throw new Error(`expected an EngineError, got ${String(error)}`);
  return { code: error.code, message: error.message };
}

const R: [number, number, number] = [255, 0, 0];
const B: [number, number, number] = [0, 0, 255];
const G: [number, number, number] = [0, 255, 0];

describe("sniffImageType", () => {
  test("reads the type from the magic bytes", async () => {
    for (const format of ["png", "jpeg", "webp", "gif"] as const) expect(sniffImageType(await solid(format, 4, 4, { r: 1, g: 2, b: 3 }))).toBe(format);
    expect(sniffImageType(PDF)).toBeUndefined();
    expect(sniffImageType(new TextEncoder().encode("RIFF\0\0\0\0WAVE"))).toBeUndefined();
    expect(sniffImageType(new Uint8Array([0xff, 0xd8]))).toBeUndefined();
    expect(sniffImageType(new Uint8Array())).toBeUndefined();
  });
});

describe("prepareImage", () => {
  test("lays pixels out as the manifest says: NHWC interleaved, NCHW by plane", async () => {
    const png = await pixels([[R, B]]);
    const nhwc = await prepareImage(png, spec({ width: 2, height: 1, resize: "stretch" }), LIMITS);
    expect([...nhwc.row]).toEqual([255, 0, 0, 0, 0, 255]);
    const nchw = await prepareImage(png, spec({ layout: "NCHW", width: 2, height: 1, resize: "stretch" }), LIMITS);
    // Red plane (255, 0), green plane (0, 0), blue plane (0, 255).
    expect([...nchw.row]).toEqual([255, 0, 0, 0, 0, 255]);
  });

  test("normalises each channel: (pixel * scale - mean[c]) / std[c]", async () => {
    const png = await pixels([[[100, 150, 200]]]);
    const { row } = await prepareImage(png, spec({ width: 1, height: 1, scale: 1 / 255, mean: [0.1, 0.2, 0.3], std: [0.5, 0.25, 2] }), LIMITS);
    const expected = [(100 / 255 - 0.1) / 0.5, (150 / 255 - 0.2) / 0.25, (200 / 255 - 0.3) / 2];
    [...row].forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
  });

  test("contain pads with the background; cover crops the centre; stretch ignores the aspect ratio", async () => {
    const wide = await pixels([
      [R, R, B, B],
      [R, R, B, B],
    ]);
    // 4 x 2 into 4 x 4: rows 1 and 2 are the picture, rows 0 and 3 the green background.
    const contained = await prepareImage(wide, spec({ width: 4, height: 4, resize: "contain", background: [0, 255, 0] }), LIMITS);
    const at = (row: Float32Array, x: number, y: number, width = 4) => [...row.subarray((y * width + x) * 3, (y * width + x) * 3 + 3)];
    expect(at(contained.row, 0, 0)).toEqual(G);
    expect(at(contained.row, 0, 1)).toEqual(R);
    expect(at(contained.row, 3, 2)).toEqual(B);
    expect(at(contained.row, 3, 3)).toEqual(G);
    // Centre 2 x 2 of 4 x 2: one red column, one blue.
    const covered = await prepareImage(wide, spec({ resize: "cover" }), LIMITS);
    expect([at(covered.row, 0, 0, 2), at(covered.row, 1, 0, 2), at(covered.row, 0, 1, 2), at(covered.row, 1, 1, 2)]).toEqual([R, B, R, B]);
    const stretched = await prepareImage(wide, spec({ width: 2, height: 1, resize: "stretch" }), LIMITS);
    expect(stretched.row[0]).toBeGreaterThan(200);
    expect(stretched.row[5]).toBeGreaterThan(200);
  });

  test("grayscale models get one channel; RGB models get three from a one-channel picture", async () => {
    // Three different greys in a row, so that a channel read from the wrong pixel shows.
    const grey = await sharp(Buffer.from([10, 100, 200]), { raw: { width: 3, height: 1, channels: 1 } }).toColourspace("b-w").png().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    expect([...(await prepareImage(grey, spec({ width: 3, height: 1 }), LIMITS)).row]).toEqual([10, 10, 10, 100, 100, 100, 200, 200, 200]);
    const red = await pixels([[R]]);
    const asGrey = await prepareImage(red, spec({ width: 1, height: 1, color: "grayscale" }), LIMITS);
    expect(asGrey.row).toHaveLength(1);
    // A luminance of pure red (libvips says 127), not its red channel (255) or another channel (0).
    expect(asGrey.row[0]).toBeGreaterThan(40);
    expect(asGrey.row[0]).toBeLessThan(200);
  });

  test("16-bit PNGs come down to 0-255", async () => {
    const deep = await sharp({ create: { width: 2, height: 2, channels: 3, background: { r: 200, g: 100, b: 50 } } }).toColourspace("rgb16").png().toBuffer();
    expect((await sharp(deep).metadata()).depth).toBe("ushort");
    expect([...(await prepareImage(deep, spec({ width: 1, height: 1 }), LIMITS)).row].map(Math.round)).toEqual([200, 100, 50]);
  });

  test("alpha is flattened onto the background", async () => {
    const transparent = await sharp({ create: { width: 2, height: 2, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    expect([...(await prepareImage(transparent, spec({ width: 1, height: 1, background: [0, 0, 255] }), LIMITS)).row]).toEqual(B);
  });

  test("the size received is after EXIF rotation; an animated image is read by its first frame", async () => {
    const rotated = await sharp(await solid("jpeg", 30, 10, { r: 0, g: 0, b: 0 })).withMetadata({ orientation: 8 }).toBuffer();
    expect(await prepareImage(rotated, spec({}), LIMITS)).toMatchObject({ width: 10, height: 30 });
    const gif = await animatedGif(6, 4, [R, B, G]);
    const first = await prepareImage(gif, spec({ width: 1, height: 1 }), LIMITS);
    expect(first).toMatchObject({ width: 6, height: 4 });
    expect([...first.row]).toEqual(R);
  });

  test("refusals: unsupported_media_type by the bytes, too_large from the header, invalid_input when unreadable or empty", async () => {
    expect(await refusal(prepareImage(PDF, spec({}), LIMITS, "file 'a.png'"))).toEqual({
      code: "unsupported_media_type",
      message: "file 'a.png' is a PDF document; send a PNG, JPEG, GIF or WebP image (the type is read from the bytes, not from a name or a declared type)",
    });
    expect(await refusal(prepareImage(pngBomb(50_000, 1_000), spec({}), LIMITS))).toEqual({
      code: "too_large",
      message: "the image is 50000 x 1000 pixels (50,000,000); the most this server decodes is 25,000,000 pixels",
    });
    // The limit is on pixels, whatever the file's size: a small noisy picture over a tiny limit.
    expect((await refusal(prepareImage(await noise("png", 10, 10), spec({}), { maxPixels: 99 }))).code).toBe("too_large");
    expect((await prepareImage(await noise("png", 10, 10), spec({}), { maxPixels: 100 })).width).toBe(10);
    const png = await noise("png", 32, 32);
    expect(await refusal(prepareImage(png.subarray(0, 8), spec({}), LIMITS))).toEqual({ code: "invalid_input", message: "the image is not a readable PNG image (truncated or corrupt): Input buffer has corrupt header" });
    expect((await refusal(prepareImage(png.subarray(0, png.length - 100), spec({}), LIMITS))).code).toBe("invalid_input");
    expect(await refusal(prepareImage(new Uint8Array(), spec({}), LIMITS, "the body"))).toEqual({ code: "invalid_input", message: "the body is empty (0 bytes)" });
  });
});
