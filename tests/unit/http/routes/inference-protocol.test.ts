/**
 * The inference protocol's tensors to and from the engine's (src/http/routes/inference-protocol/schemas.ts): every
 * datatype a JSON body can carry, flat and nested data, and each refusal naming the tensor and what is wrong.
 */
import { describe, expect, test } from "bun:test";
import type { TensorData, TensorInfo } from "../../../../src/engine/execution/session-protocol.ts";
import { decodeTensor, encodeData, protocolShape, TensorError, type RequestTensor } from "../../../../src/http/routes/inference-protocol/schemas.ts";

const input = (type: string, shape: TensorInfo["shape"] = ["batch", 2]): TensorInfo => ({ name: "x", type, shape });
const tensor = (datatype: string, data: unknown[], shape = [1, data.length]): RequestTensor => ({ name: "x", datatype, shape, data });

/** The TensorError decodeTensor throws, by message. */
function refusal(request: RequestTensor, graphInput: TensorInfo): string {
  try {
    decodeTensor(request, graphInput);
  } catch (error) {
    expect(error).toBeInstanceOf(TensorError);
    return (error as Error).message;
  }
  throw new Error("decodeTensor accepted the tensor");
}

describe("decodeTensor: each datatype becomes ONNX Runtime's typed array", () => {
  test.each([
    ["FP32", "float32", [1.5, -2.25], Float32Array.of(1.5, -2.25)],
    ["FP64", "float64", [0.1, 1e300], Float64Array.of(0.1, 1e300)],
    ["INT8", "int8", [-128, 127], Int8Array.of(-128, 127)],
    ["INT16", "int16", [-32768, 32767], Int16Array.of(-32768, 32767)],
    ["INT32", "int32", [-2147483648, 2147483647], Int32Array.of(-2147483648, 2147483647)],
    ["INT64", "int64", [-9007199254740991, 9007199254740991], BigInt64Array.of(-9007199254740991n, 9007199254740991n)],
    ["UINT8", "uint8", [0, 255], Uint8Array.of(0, 255)],
    ["UINT16", "uint16", [0, 65535], Uint16Array.of(0, 65535)],
    ["UINT32", "uint32", [0, 4294967295], Uint32Array.of(0, 4294967295)],
    ["UINT64", "uint64", [0, 9007199254740991], BigUint64Array.of(0n, 9007199254740991n)],
    ["BOOL", "bool", [true, false], Uint8Array.of(1, 0)],
    ["BYTES", "string", ["in the", "beginning"], ["in the", "beginning"]],
  ])("%s (%s)", (datatype, type, data, expected) => {
    expect(decodeTensor(tensor(datatype, data), input(type))).toEqual({ type, dims: [1, 2], data: expected } as TensorData);
  });

  test("nested data, row-major, equals the same data flat", () => {
    const nested = decodeTensor({ name: "x", datatype: "FP32", shape: [2, 2, 2], data: [[[1, 2], [3, 4]], [[5, 6], [7, 8]]] }, input("float32", [-1, 2, 2]));
    expect(nested).toEqual({ type: "float32", dims: [2, 2, 2], data: Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8) });
    expect(decodeTensor({ name: "x", datatype: "FP32", shape: [2, 2, 2], data: [1, 2, 3, 4, 5, 6, 7, 8] }, input("float32", [-1, 2, 2]))).toEqual(nested);
  });

  test("an empty batch passes here (the row batcher refuses it)", () => {
    expect(decodeTensor({ name: "x", datatype: "FP32", shape: [0, 2], data: [] }, input("float32"))).toEqual({ type: "float32", dims: [0, 2], data: new Float32Array(0) });
  });
});

describe("decodeTensor refuses, naming the tensor", () => {
  test.each([
    ["another datatype than the input's", tensor("FP64", [1, 2]), input("float32"), "input 'x' must be FP32, not FP64"],
    ["an unknown datatype", tensor("FLOAT", [1, 2]), input("float32"), "input 'x' must be FP32, not FLOAT"],
    ["FP16, which JSON cannot carry", tensor("FP16", [1, 2]), input("float16"), "input 'x': FP16 has no JSON representation (the protocol leaves it out), so this server cannot take it; the model's input is FP16"],
    ["FP32 for an FP16 input", tensor("FP32", [1, 2]), input("float16"), "input 'x': FP16 has no JSON representation (the protocol leaves it out), so this server cannot take it; the model's input is FP16"],
    ["fewer values than the shape holds", tensor("FP32", [1, 2, 3], [2, 2]), input("float32"), "input 'x' has shape [2, 2], which holds 4 values, but 3 were given"],
    ["more values than the shape holds", tensor("FP32", [1, 2, 3], [1, 2]), input("float32"), "input 'x' has shape [1, 2], which holds 2 values, but 3 were given"],
    ["nesting of another length", { name: "x", datatype: "FP32", shape: [2, 2], data: [[1, 2], [3]] }, input("float32"), "input 'x': data[1] holds 1 items, but dimension 1 of shape [2, 2] is 2"],
    ["nesting deeper than the shape", { name: "x", datatype: "FP32", shape: [1, 2], data: [[[1], [2]]] }, input("float32"), "input 'x': data[0][0] is an array, but shape [1, 2] nests 2 deep"],
    ["nesting shallower than the shape", { name: "x", datatype: "FP32", shape: [2, 1, 1], data: [[1], [2]] }, input("float32", [-1, 1, 1]), "input 'x': data[0][0] is not an array, but shape [2, 1, 1] nests 3 deep"],
    ["flat and nested mixed", { name: "x", datatype: "FP32", shape: [2, 2], data: [[1, 2], 3, 4] }, input("float32"), "input 'x': data holds 3 items, but dimension 0 of shape [2, 2] is 2"],
    ["a string for a number", tensor("FP32", [1, "2"]), input("float32"), `input 'x': data[1] is "2", not a number (FP32)`],
    ["null for a number", tensor("FP64", [null, 2]), input("float64"), "input 'x': data[0] is null, not a number (FP64)"],
    ["a fraction for an integer", tensor("INT32", [1, 2.5]), input("int32"), "input 'x': data[1] is 2.5, not an integer from -2147483648 to 2147483647 (INT32)"],
    ["an integer out of range", tensor("UINT8", [256, 0]), input("uint8"), "input 'x': data[0] is 256, not an integer from 0 to 255 (UINT8)"],
    ["a negative unsigned integer", tensor("UINT32", [-1, 0]), input("uint32"), "input 'x': data[0] is -1, not an integer from 0 to 4294967295 (UINT32)"],
    ["an INT64 JSON cannot carry exactly", tensor("INT64", [2 ** 53, 0]), input("int64"), "input 'x': data[0] is 9007199254740992, not an integer from -9007199254740991 to 9007199254740991 (INT64)"],
    ["0 or 1 for BOOL", tensor("BOOL", [1, 0]), input("bool"), "input 'x': data[0] is 1, not true or false (BOOL)"],
    ["a number for BYTES", tensor("BYTES", ["a", 1]), input("string"), "input 'x': data[1] is 1, not a string (BYTES)"],
  ])("%s", (_, request, graphInput, message) => {
    expect(refusal(request as RequestTensor, graphInput)).toBe(message);
  });
});

describe("encodeData: outputs as JSON values", () => {
  test("floats as numbers, BOOL as true/false, strings as they are", () => {
    expect(encodeData("p", { type: "float32", dims: [2], data: Float32Array.of(0.5, 0.25) })).toEqual([0.5, 0.25]);
    expect(encodeData("c", { type: "bool", dims: [3], data: Uint8Array.of(1, 0, 1) })).toEqual([true, false, true]);
    expect(encodeData("l", { type: "string", dims: [1], data: ["setosa"] })).toEqual(["setosa"]);
    expect(encodeData("u", { type: "uint8", dims: [2], data: Uint8Array.of(0, 255) })).toEqual([0, 255]);
  });

  test("64-bit integers as numbers while exact; beyond ±2^53 a TensorError says so", () => {
    expect(encodeData("i", { type: "int64", dims: [2], data: BigInt64Array.of(-9007199254740991n, 9007199254740991n) })).toEqual([-9007199254740991, 9007199254740991]);
    expect(encodeData("u", { type: "uint64", dims: [1], data: BigUint64Array.of(42n) })).toEqual([42]);
    expect(() => encodeData("ids", { type: "int64", dims: [2], data: BigInt64Array.of(1n, 9007199254740993n) })).toThrow(
      new TensorError(`output 'ids' holds 9007199254740993 at [1], beyond ±2^53, which a JSON number cannot carry exactly; leave the output out with "outputs"`),
    );
    expect(() => encodeData("ids", { type: "int64", dims: [1], data: BigInt64Array.of(-9007199254740992n) })).toThrow(TensorError);
  });
});

test("protocolShape writes a free dimension, named or -1, as -1", () => {
  expect(protocolShape(["batch", 1, 28, -1])).toEqual([-1, 1, 28, -1]);
});
