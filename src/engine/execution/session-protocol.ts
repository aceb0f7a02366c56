/** Messages between a SessionPool and its worker threads. */
/** A tensor's values, row-major: a typed array of its ONNX type ("bool" in a Uint8Array), or strings. */
export type TensorValues =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | string[];

/** A tensor as it crosses between threads: ONNX Runtime's type name ("float32", "int64", "bool", "string", ...). */
export type TensorData = {
  type: string;
  dims: number[];
  data: TensorValues;
};

export type TensorInfo = { name: string; type: string; shape: (number | string)[] };

export type WorkerInit = { modelPath: string; intraOpThreads: number };

export type SessionRequest =
  | { kind: "run"; id: number; feeds: Record<string, TensorData> }
  | { kind: "close" };

export type SessionResponse =
  | { kind: "loaded"; inputs: TensorInfo[]; outputs: TensorInfo[] }
  | { kind: "load_error"; message: string }
  | { kind: "result"; id: number; outputs: Record<string, TensorData> }
  | { kind: "error"; id: number; message: string };
