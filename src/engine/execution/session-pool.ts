/**
 * A fixed set of ONNX sessions for one model, each owned by a worker thread; runs go to an idle one. A model so
 * small that handing a run to a worker costs more than the run itself is run on the event loop instead.
 */
import { readFile, stat } from "node:fs/promises";
import type { Worker } from "node:worker_threads";
import type * as ort from "onnxruntime-node";
import { EngineError } from "../errors.ts";
import { describeValues, openSession, runSession } from "./onnx-session.ts";
import type { SessionRequest, SessionResponse, TensorData, TensorInfo, WorkerInit } from "./session-protocol.ts";
import { startModelWorker, transferList } from "./worker-host.ts";

export type Feeds = Record<string, TensorData>;
export type Outputs = Record<string, TensorData>;

export type SessionPoolOptions = {
  /** Sessions (worker threads) in the pool. */
  size: number;
  /** Threads each session may use for one run. */
  intraOpThreads: number;
  /**
   * Run on the event loop, with one session, when the fastest of a few runs of `probe` (the largest run the
   * caller will make) takes at most `maxMs` milliseconds. A worker round trip costs the event loop tens of
   * microseconds, more than such a run blocks it. Without it, or when the probe is slower, workers it is.
   */
  inline?: { probe: Feeds; maxMs: number };
};

/**
 * Larger model files are never run inline: a model whose runs take microseconds is far smaller, and parsing a
 * large one would block the event loop.
 */
const INLINE_MAX_MODEL_BYTES = 1 << 20;

/** Where a pool's sessions run. */
type Placement = "worker" | "inline";

type Session = {
  busy: boolean;
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];
  run(feeds: Feeds): Promise<Outputs>;
  close(): Promise<void>;
};

/** A session on the event loop: for models whose runs take microseconds. */
class InlineSession implements Session {
  busy = false;
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];

  private constructor(private readonly session: ort.InferenceSession) {
    this.inputs = describeValues(session.inputMetadata);
    this.outputs = describeValues(session.outputMetadata);
  }

  /**
   * Opens the model on the event loop if its file is small enough to be a candidate, else undefined. ONNX
   * Runtime loads synchronously, so the file is read asynchronously first and only its bytes are parsed here.
   */
  static async open(modelPath: string, intraOpThreads: number): Promise<InlineSession | undefined> {
    try {
      const file = await stat(modelPath);
      if (!file.isFile() || file.size > INLINE_MAX_MODEL_BYTES) return undefined;
      return new InlineSession(await openSession(await readFile(modelPath), intraOpThreads));
    } catch (error) {
      throw new EngineError("load_failed", `${modelPath}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async run(feeds: Feeds): Promise<Outputs> {
    try {
      return await runSession(this.session, feeds);
    } catch (error) {
      throw new EngineError("inference_failed", error instanceof Error ? error.message : String(error));
    }
  }

  /**
   * Milliseconds of the fastest of a few runs, after some to warm up: the model's own cost. A median would
   * also measure whatever else the machine is doing at start-up (other models loading, say) and could send a
   * fast model to the workers on a busy start.
   */
  async time(feeds: Feeds, runs = 20): Promise<number> {
    for (let i = 0; i < 3; i++) await this.run(feeds);
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) {
      const start = performance.now();
      await this.run(feeds);
      ms.push(performance.now() - start);
    }
    return Math.min(...ms);
  }

  close() {
    return this.session.release();
  }
}

// Bun runs the TypeScript worker directly; a bundle for Node ships the compiled .js beside this module.
const workerUrl = new URL(`./session-worker.${import.meta.url.endsWith(".ts") ? "ts" : "js"}`, import.meta.url);

class SessionWorker implements Session {
  private nextId = 0;
  private pending = new Map<number, { resolve: (o: Outputs) => void; reject: (e: Error) => void }>();
  busy = false;

  private constructor(
    private readonly worker: Worker,
    readonly inputs: TensorInfo[],
    readonly outputs: TensorInfo[],
  ) {
    worker.on("message", (message: SessionResponse) => {
      if (message.kind !== "result" && message.kind !== "error") return;
      const call = this.pending.get(message.id);
      if (!call) return;
      this.pending.delete(message.id);
      if (message.kind === "result") call.resolve(message.outputs);
      else call.reject(new EngineError("inference_failed", message.message));
    });
    worker.on("error", (error: Error) => this.failAll(error));
    worker.on("exit", () => this.failAll(new Error("session worker exited")));
  }

  static async start(modelPath: string, intraOpThreads: number): Promise<SessionWorker> {
    const init: WorkerInit = { modelPath, intraOpThreads };
    const { worker, loaded } = await startModelWorker<Extract<SessionResponse, { kind: "loaded" }>>(workerUrl, init, modelPath);
    return new SessionWorker(worker, loaded.inputs, loaded.outputs);
  }

  run(feeds: Feeds): Promise<Outputs> {
    const id = this.nextId++;
    // Feeds are built for this one call, so their buffers move to the worker without a copy.
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const request: SessionRequest = { kind: "run", id, feeds };
      this.worker.postMessage(request, transferList(feeds));
    });
  }

  private failAll(error: Error) {
    for (const call of this.pending.values()) call.reject(new EngineError("inference_failed", error.message));
    this.pending.clear();
  }

  async close() {
    const exited = new Promise((resolve) => this.worker.once("exit", resolve));
    this.worker.postMessage({ kind: "close" } satisfies SessionRequest);
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 1000))]);
    await this.worker.terminate();
  }
}

export class SessionPool {
  private waiting: (() => void)[] = [];
  private closed = false;

  private constructor(
    private readonly workers: Session[],
    readonly placement: Placement,
  ) {}

  /**
   * Opens the model inline if `options.inline` finds it fast enough, else starts `size` workers, each loading
   * the model; rejects with load_failed if any cannot.
   */
  static async create(modelPath: string, options: SessionPoolOptions): Promise<SessionPool> {
    if (options.inline) {
      const session = await InlineSession.open(modelPath, options.intraOpThreads);
      if (session) {
        let fast = false;
        try {
          fast = (await session.time(options.inline.probe)) <= options.inline.maxMs;
        } catch {
          // A probe the model rejects says nothing about its speed; the workers will report real errors per run.
        }
        if (fast) return new SessionPool([session], "inline");
        await session.close();
      }
    }
    const started = await Promise.allSettled(
      Array.from({ length: options.size }, () => SessionWorker.start(modelPath, options.intraOpThreads)),
    );
    const workers = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    const failure = started.find((s) => s.status === "rejected");
    if (failure) {
      await Promise.all(workers.map((w) => w.close()));
      throw failure.reason;
    }
    return new SessionPool(workers, "worker");
  }

  get size() {
    return this.workers.length;
  }

  /** The model's inputs and outputs, as ONNX Runtime reports them. */
  get inputs() {
    return this.workers[0]!.inputs;
  }
  get outputs() {
    return this.workers[0]!.outputs;
  }

  /** Runs on an idle session, waiting for one if all are busy. */
  async run(feeds: Feeds): Promise<Outputs> {
    if (this.closed) throw new EngineError("not_ready", "the session pool is closed");
    let worker = this.workers.find((w) => !w.busy);
    while (!worker) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      worker = this.workers.find((w) => !w.busy);
    }
    worker.busy = true;
    try {
      return await worker.run(feeds);
    } finally {
      worker.busy = false;
      this.waiting.shift()?.();
    }
  }

  async close() {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
