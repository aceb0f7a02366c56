/** Messages between a SessionPool and its worker threads. */
export type TensorData = {
  type: string;
  dims: number[];
  data: Float32Array | BigInt64Array | Int32Array | Uint8Array;
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
