/** Messages between a TextGenerator (main thread) and its generation worker. */
import type { EngineErrorCode } from "../../errors.ts";
import type { GenerationEvent, GenerationParams } from "./generator.ts";

export type GenerationWorkerInit = {
  modelPath: string;
  tokenizerPath: string;
  contextLength: number;
  eosToken?: string;
  maxStreams: number;
  maxQueue: number;
  maxGenerationMs: number;
  intraOpThreads: number;
};

/** A request as the worker takes it: the caller's parameters, with a seed drawn for those that brought none. */
export type StreamRequest = GenerationParams & { seed: number };

/** Streams holding a slot, streams waiting for one, decode steps run, and prefill runs (each one a group of newcomers). */
export type StreamStats = { active: number; queued: number; steps: number; prefills: number };

export type StreamEvent = ({ id: number } & GenerationEvent) | { id: number; type: "error"; message: string };

export type ToWorker =
  | { kind: "submit"; id: number; request: StreamRequest }
  | { kind: "cancel"; id: number }
  /** Take no new requests, finish the ones admitted, then release the session and exit. */
  | { kind: "close" };

export type FromWorker =
  | { kind: "loaded" }
  | { kind: "load_error"; message: string }
  | { kind: "accepted"; id: number; promptTokens: number }
  | { kind: "rejected"; id: number; code: EngineErrorCode; message: string; retryAfter?: number }
  /** The events since the last update, and the counts (see GenerationScheduler for when updates go out). */
  | { kind: "update"; stats: StreamStats; events: StreamEvent[] };
