/**
 * The Open Inference Protocol's (KServe v2) bodies, and its tensors to and from the engine's. The envelope of a
 * request is checked by zod; tensor data, which may hold a whole image, is checked and converted by one tight loop
 * per tensor (decodeTensor), never element by element through a schema.
 */
import { z } from "@hono/zod-openapi";
import type { TensorData, TensorInfo, TensorValues } from "../../../engine/execution/session-protocol.ts";

/** The protocol's datatype of each ONNX Runtime tensor type. */
const DATATYPES: Record<string, string> = {
  bool: "BOOL",
  int8: "INT8",
  int16: "INT16",
  int32: "INT32",
  int64: "INT64",
  uint8: "UINT8",
  uint16: "UINT16",
  uint32: "UINT32",
  uint64: "UINT64",
  float16: "FP16",
  bfloat16: "BF16",
  float32: "FP32",
  float64: "FP64",
  string: "BYTES",
};

/** The datatypes a JSON body can carry: FP16 and BF16 have no JSON representation (the protocol says as much). */
export const JSON_DATATYPES = ["BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP32", "FP64", "BYTES"] as const;

/** The protocol's datatype for an ONNX Runtime type; a type it has no name for is passed on upper-cased. */
export const datatypeOf = (type: string): string => DATATYPES[type] ?? type.toUpperCase();

/** A shape as the protocol writes it: -1 for a free dimension (ONNX Runtime names it, or says -1). */
export const protocolShape = (shape: TensorInfo["shape"]): number[] => shape.map((d) => (typeof d === "number" && d >= 0 ? d : -1));

/** Why a tensor cannot be taken or given; the handler answers it as the protocol's 400. */
export class TensorError extends Error {
  override name = "TensorError";
}

type Element = { array: new (n: number) => Exclude<TensorValues, string[]>; min?: number; max?: number };

/** How each datatype is held (ONNX Runtime's bool is a Uint8Array of 0 and 1) and the integers it can hold. */
const ELEMENTS: Record<string, Element> = {
  BOOL: { array: Uint8Array },
  INT8: { array: Int8Array, min: -128, max: 127 },
  INT16: { array: Int16Array, min: -32768, max: 32767 },
  INT32: { array: Int32Array, min: -2147483648, max: 2147483647 },
  // Beyond ±2^53 a JSON number is not one integer but a rounded one: refused rather than silently changed.
  INT64: { array: BigInt64Array, min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER },
  UINT8: { array: Uint8Array, min: 0, max: 255 },
  UINT16: { array: Uint16Array, min: 0, max: 65535 },
  UINT32: { array: Uint32Array, min: 0, max: 4294967295 },
  UINT64: { array: BigUint64Array, min: 0, max: Number.MAX_SAFE_INTEGER },
  FP32: { array: Float32Array },
  FP64: { array: Float64Array },
};

const ONNX_TYPES: Record<string, string> = Object.fromEntries(Object.entries(DATATYPES).map(([onnx, datatype]) => [datatype, onnx]));

/** A request tensor as the envelope schema lets it through: data not yet looked at. */
export type RequestTensor = { name: string; shape: number[]; datatype: string; data: unknown[] };

/**
 * The engine's tensor for a request tensor whose graph input is `input`: its datatype must be the input's, its
 * data (flat, or nested exactly as the shape) must hold the shape's element count, each a value of the datatype.
 * Throws a TensorError naming the tensor and what is wrong.
 */
export function decodeTensor(tensor: RequestTensor, input: TensorInfo): TensorData {
  const { name, shape, datatype } = tensor;
  const expected = datatypeOf(input.type);
  if (datatype === "FP16" || datatype === "BF16" || expected === "FP16" || expected === "BF16") {
    const half = datatype === "FP16" || datatype === "BF16" ? datatype : expected;
    throw new TensorError(`input '${name}': ${half} has no JSON representation (the protocol leaves it out), so this server cannot take it; the model's input is ${expected}`);
  }
  if (datatype !== expected) throw new TensorError(`input '${name}' must be ${expected}, not ${datatype}`);
  const count = shape.reduce((a, b) => a * b, 1);
  const flat = flatten(tensor.data, shape, name);
  if (flat.length !== count) throw new TensorError(`input '${name}' has shape [${shape.join(", ")}], which holds ${count} values, but ${flat.length} were given`);
  return { type: ONNX_TYPES[datatype] ?? input.type, dims: shape, data: convert(flat, datatype, name) };
}

/** The data in row-major order: as given when flat, else the nesting checked against the shape, level by level. */
function flatten(data: unknown[], shape: number[], name: string): unknown[] {
  if (data.length === 0 || !Array.isArray(data[0])) return data;
  const flat: unknown[] = [];
  const walk = (level: unknown[], depth: number, path: string) => {
    if (level.length !== shape[depth]) {
      throw new TensorError(`input '${name}': data${path} holds ${level.length} items, but dimension ${depth} of shape [${shape.join(", ")}] is ${shape[depth] ?? "absent"}`);
    }
    const leaf = depth === shape.length - 1;
    for (let i = 0; i < level.length; i++) {
      const item = level[i];
      if (Array.isArray(item) !== !leaf) {
        throw new TensorError(`input '${name}': data${path}[${i}] is ${leaf ? "an array" : "not an array"}, but shape [${shape.join(", ")}] nests ${shape.length} deep`);
      }
      if (leaf) flat.push(item);
      else walk(item as unknown[], depth + 1, `${path}[${i}]`);
    }
  };
  walk(data, 0, "");
  return flat;
}

/** The values as the typed array (or strings) of `datatype`, each checked: one pass, no allocation per element. */
function convert(values: unknown[], datatype: string, name: string): TensorValues {
  const n = values.length;
  const bad = (i: number, what: string) => new TensorError(`input '${name}': data[${i}] is ${JSON.stringify(values[i])}, not ${what}`);
  if (datatype === "BYTES") {
    for (let i = 0; i < n; i++) if (typeof values[i] !== "string") throw bad(i, "a string (BYTES)");
    return values as string[];
  }
  const element = ELEMENTS[datatype];
  if (!element) throw new TensorError(`input '${name}': unknown datatype ${datatype}; the datatypes are ${JSON_DATATYPES.join(", ")}`);
  const out = new element.array(n);
  if (datatype === "BOOL") {
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v !== true && v !== false) throw bad(i, "true or false (BOOL)");
      out[i] = v ? 1 : 0;
    }
    return out;
  }
  if (element.min === undefined) {
    const floats = out as Float32Array;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (typeof v !== "number") throw bad(i, `a number (${datatype})`);
      floats[i] = v;
    }
    return out;
  }
  const { min, max = 0 } = element;
  const range = `an integer from ${min} to ${max} (${datatype})`;
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw bad(i, range);
      out[i] = BigInt(v as number);
    }
    return out;
  }
  const ints = out as Int32Array;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw bad(i, range);
    ints[i] = v as number;
  }
  return out;
}

/** An output tensor's data as JSON values: numbers (64-bit integers only while exact), booleans or strings. */
export function encodeData(name: string, tensor: TensorData): (number | boolean | string)[] {
  const data = tensor.data;
  if (Array.isArray(data)) return data;
  if (tensor.type === "bool") {
    const out = new Array<boolean>(data.length);
    for (let i = 0; i < data.length; i++) out[i] = data[i] !== 0;
    return out;
  }
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    const out = new Array<number>(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v > 9007199254740991n || v < -9007199254740991n) {
        throw new TensorError(`output '${name}' holds ${v} at [${i}], beyond ±2^53, which a JSON number cannot carry exactly; leave the output out with "outputs"`);
      }
      out[i] = Number(v);
    }
    return out;
  }
  return Array.from(data as Float32Array);
}

// --- The bodies, for zod (the envelope) and the OpenAPI document ---

const Parameters = z
  .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
  .openapi("InferenceParameters", { description: "Name/value pairs; accepted, and none changes what this server does", example: {} });

const Shape = z.array(z.number().int().min(0)).openapi({ description: "Dimensions, batch first", example: [1, 4] });

/**
 * Tensor data, flat or nested as the shape, row-major. Only "an array" is checked here: the elements are checked
 * and converted against the model's input in one pass (decodeTensor), which a schema per element would make slow.
 */
const TensorDataSchema = z.custom<unknown[]>((v) => Array.isArray(v), { error: (issue) => (issue.input === undefined ? "is required" : "must be an array") }).openapi({
  type: "array",
  items: { anyOf: [{ type: "number" }, { type: "string" }, { type: "boolean" }, { type: "array" }] },
  description: "The values in row-major order, flat or nested as the shape: numbers, true/false (BOOL) or strings (BYTES)",
  example: [5.1, 3.5, 1.4, 0.2],
});

const Datatype = z.string().openapi({ description: "BOOL, INT8–INT64, UINT8–UINT64, FP32, FP64 or BYTES (FP16 has no JSON form)", example: "FP32" });

export const MetadataTensor = z
  .object({ name: z.string().openapi({ example: "input" }), datatype: Datatype, shape: z.array(z.number().int()).openapi({ description: "-1 for a free dimension", example: [-1, 4] }) })
  .openapi("InferenceMetadataTensor");

export const ServerMetadata = z
  .object({
    name: z.string().openapi({ example: "onnx-serve" }),
    version: z.string().openapi({ example: "0.1.0" }),
    extensions: z.array(z.string()).openapi({ description: "None: the protocol defines no standard extensions", example: [] }),
  })
  .openapi("InferenceServerMetadata");

export const ServerLive = z.object({ live: z.boolean() }).openapi("InferenceServerLive", { example: { live: true } });
export const ServerReady = z.object({ ready: z.boolean() }).openapi("InferenceServerReady", { example: { ready: true } });
export const ModelReady = z.object({ name: z.string(), ready: z.boolean() }).openapi("InferenceModelReady", { example: { name: "iris", ready: true } });

export const ModelMetadata = z
  .object({
    name: z.string().openapi({ example: "iris" }),
    versions: z.array(z.string()).openapi({ description: "The served version, the only one that can be addressed", example: ["1.0.0"] }),
    platform: z.literal("onnx_onnxv1"),
    inputs: z.array(MetadataTensor),
    outputs: z.array(MetadataTensor),
  })
  .openapi("InferenceModelMetadata", {
    example: {
      name: "iris",
      versions: ["1.0.0"],
      platform: "onnx_onnxv1",
      inputs: [{ name: "input", datatype: "FP32", shape: [-1, 4] }],
      outputs: [{ name: "probabilities", datatype: "FP32", shape: [-1, 3] }],
    },
  });

const RequestInput = z
  .object({ name: z.string().min(1), shape: Shape, datatype: Datatype, parameters: Parameters.optional(), data: TensorDataSchema })
  .openapi("InferenceRequestInput");

const RequestOutput = z.object({ name: z.string().min(1), parameters: Parameters.optional() }).openapi("InferenceRequestOutput");

export const InferenceRequest = z
  .object({
    id: z.string().optional().openapi({ description: "Echoed in the response", example: "42" }),
    parameters: Parameters.optional(),
    inputs: z.array(RequestInput).min(1).openapi({ description: "Every input of the model, each with the same batch size first" }),
    outputs: z.array(RequestOutput).optional().openapi({ description: "The outputs to return; all when absent" }),
  })
  .openapi("InferenceRequest", {
    example: { id: "42", inputs: [{ name: "input", shape: [2, 4], datatype: "FP32", data: [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]] }], outputs: [{ name: "probabilities" }] },
  });

const ResponseOutput = z
  .object({
    name: z.string(),
    shape: z.array(z.number().int()),
    datatype: z.string(),
    data: z.array(z.union([z.number(), z.string(), z.boolean()])).openapi({ description: "Flat, row-major" }),
  })
  .openapi("InferenceResponseOutput");

export const InferenceResponse = z
  .object({
    model_name: z.string(),
    model_version: z.string(),
    id: z.string().optional().openapi({ description: "The request's id, when it had one" }),
    outputs: z.array(ResponseOutput),
  })
  .openapi("InferenceResponse", {
    example: {
      model_name: "iris",
      model_version: "1.0.0",
      id: "42",
      outputs: [{ name: "probabilities", shape: [2, 3], datatype: "FP32", data: [0.9974, 0.0026, 1.2e-13, 5.1e-8, 0.0045, 0.9955] }],
    },
  });

export type InferenceRequestBody = z.infer<typeof InferenceRequest>;
