/** What the classification routes take and answer, as documented at /doc. */
import { z } from "@hono/zod-openapi";
import { problemResponse as problem } from "../../openapi.ts";
import { queryNumber } from "../../text-params.ts";
import { ModelRef } from "../../schemas.ts";

/** Labels in `top_k` when the query does not say (or every label, if the model has fewer). */
export const DEFAULT_TOP_K = 5;

/** The form field that carries the images, one part per image. */
export const FILE_FIELD = "file";

/** The media types of a raw image body: the type is still decided by the bytes (any image/* is read the same way). */
export const RAW_IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif", "application/octet-stream"] as const;

export const ClassifyQuery = z.object({
  top_k: queryNumber(z.number().int().min(1).optional(), true).openapi({
    param: { name: "top_k", in: "query" },
    description: `How many of the most likely labels to list in \`top_k\`: a positive integer; default ${DEFAULT_TOP_K}, at most the model's label count`,
    example: 3,
  }),
});

const binary = { type: "string", format: "binary" } as const;

/**
 * The request bodies, as plain OpenAPI schemas: a zod schema here would make the router parse and validate the form
 * itself, with its own answers; the handler reads the body instead, so that every refusal names what is wrong.
 */
export const imageBodies = (maxFiles: number, maxBytes: number) => ({
  required: true,
  description: `One image (PNG, JPEG, GIF or WebP; the type is read from the bytes), or up to ${maxFiles} as a batch; at most ${maxBytes} bytes in all.`,
  content: {
    "multipart/form-data": {
      schema: {
        type: "object" as const,
        required: [FILE_FIELD],
        properties: {
          [FILE_FIELD]: { type: "array" as const, items: binary, minItems: 1, maxItems: maxFiles, description: `One \`${FILE_FIELD}\` part per image; several make a batch, answered in order` },
        },
      },
      encoding: { [FILE_FIELD]: { contentType: "image/png, image/jpeg, image/gif, image/webp" } },
    },
    ...Object.fromEntries(RAW_IMAGE_TYPES.map((type) => [type, { schema: { ...binary, description: "The image itself as the body; a Content-Disposition filename, if sent, is echoed back" } }])),
  },
});

export const ScoredLabel = z
  .object({
    label: z.string().openapi({ example: "7" }),
    confidence: z.number().openapi({ description: "Probability of the label, 0 to 1", example: 0.9981 }),
  })
  .openapi("ScoredLabel");

export const ImagePrediction = z
  .object({
    filename: z.string().nullable().openapi({ description: "The part's filename; for a raw body, Content-Disposition's filename, else null", example: "digit-7.png" }),
    label: z.string().openapi({ description: "The most likely label", example: "7" }),
    confidence: z.number().openapi({ description: "Its probability", example: 0.9981 }),
    top_k: z.array(ScoredLabel).openapi({
      description: "The most likely labels, most likely first",
      example: [
        { label: "7", confidence: 0.9981 },
        { label: "1", confidence: 0.0012 },
        { label: "2", confidence: 0.0004 },
      ],
    }),
    width: z.number().int().openapi({ description: "The image's width as received (after its EXIF orientation), in pixels", example: 28 }),
    height: z.number().int().openapi({ description: "Its height, likewise", example: 28 }),
  })
  .openapi("ImagePrediction");

export const ImageClassification = z.object({ ...ModelRef, ...ImagePrediction.shape }).openapi("ImageClassification", {
  example: {
    model: "digits",
    version: "1.0.0",
    filename: "digit-7.png",
    label: "7",
    confidence: 0.9981,
    top_k: [
      { label: "7", confidence: 0.9981 },
      { label: "1", confidence: 0.0012 },
    ],
    width: 28,
    height: 28,
  },
});

export const ImageClassificationBatch = z
  .object({ ...ModelRef, predictions: z.array(ImagePrediction).openapi({ description: "One per file, in the order sent" }) })
  .openapi("ImageClassificationBatch", {
    example: {
      model: "digits",
      version: "1.0.0",
      predictions: [
        { filename: "digit-3.png", label: "3", confidence: 0.9954, top_k: [{ label: "3", confidence: 0.9954 }], width: 28, height: 28 },
        { filename: "digit-8.png", label: "8", confidence: 0.9902, top_k: [{ label: "8", confidence: 0.9902 }], width: 28, height: 28 },
      ],
    },
  });

/** The refusals particular to uploads, each with an example of its own. */
export const uploadProblems = (maxBytes: number) => ({
  400: problem("The multipart body cannot be parsed", {
    type: "/problems/malformed-multipart",
    title: "Malformed multipart body",
    status: 400,
    detail: "The multipart/form-data body cannot be parsed; send each image as a 'file' part (curl -F file=@digit.png).",
  }),
  413: problem(`The body or a file is over ${maxBytes} bytes, or an image has more pixels than the server decodes (IMAGE_MAX_PIXELS, read from its header before decoding)`, {
    type: "/problems/too-large",
    title: "Content Too Large",
    status: 413,
    detail: "file 'scan.png' is 20000 x 20000 pixels (400,000,000); the most this server decodes is 25,000,000 pixels",
  }),
  415: problem("The body is neither multipart/form-data nor an image, or a file is not a PNG, JPEG, GIF or WebP image by its bytes", {
    type: "/problems/unsupported-media-type",
    title: "Unsupported Media Type",
    status: 415,
    detail: "file 'report.png' is a PDF document; send a PNG, JPEG, GIF or WebP image (the type is read from the bytes, not from a name or a declared type)",
  }),
  422: problem("No file, too many, a wrong field name, an invalid top_k, a truncated or corrupt image, or a model that does not classify images", {
    type: "/problems/validation-error",
    title: "Validation failed",
    status: 422,
    detail: "file: the form has no 'file' part (it has 'image'); send each image as a part named 'file'",
    errors: [{ path: "file", message: "the form has no 'file' part (it has 'image'); send each image as a part named 'file'" }],
  }),
});
