/**
 * Dynamic micro-batching in the spirit of Triton's dynamic batcher: requests that arrive within a short window
 * run as one batch. A batch is cut when it holds `maxBatchSize` rows, or when its oldest request has waited
 * `maxWaitMs`, and only while fewer than `concurrency` batches are running (one per session), so under load
 * requests gather into full batches instead of queueing behind small ones.
 */
import { EngineError } from "../errors.ts";

export type MicroBatcherOptions = {
  /** Rows (the sum of request weights) one batch may hold. A single heavier request runs alone. */
  maxBatchSize: number;
  /** How long the oldest waiting request may wait for company, in milliseconds. */
  maxWaitMs: number;
  /** Requests that may wait; beyond it submit() fails at once with `overloaded`. */
  maxQueue: number;
  /** Batches that may run at once; the session count of the pool behind it. */
  concurrency: number;
};

/** Where a request's time went: waiting for its batch, then running in it. */
export type BatchTiming = { queueMs: number; inferenceMs: number };

/** A request's own result and its timing. */
export type Batched<Out> = { result: Out; timing: BatchTiming };

/** Runs a batch; returns one result per input, in order. */
export type RunBatch<In, Out> = (inputs: In[]) => Promise<Out[]>;

type Pending<In, Out> = {
  input: In;
  weight: number;
  enqueuedAt: number;
  resolve: (out: Batched<Out>) => void;
  reject: (error: unknown) => void;
};

export class MicroBatcher<In, Out> {
  private queue: Pending<In, Out>[] = [];
  private queuedWeight = 0;
  private running = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly runBatch: RunBatch<In, Out>,
    private readonly options: MicroBatcherOptions,
    /** Rows a request counts for; 1 by default. */
    private readonly weigh: (input: In) => number = () => 1,
  ) {
    if (options.maxBatchSize < 1) throw new RangeError("maxBatchSize must be at least 1");
    if (options.concurrency < 1) throw new RangeError("concurrency must be at least 1");
  }

  /** Requests waiting for a batch. */
  get queued() {
    return this.queue.length;
  }

  /** Queues one request; resolves with its own result when its batch has run. */
  submit(input: In): Promise<Batched<Out>> {
    if (this.queue.length >= this.options.maxQueue) {
      return Promise.reject(new EngineError("overloaded", `the queue is full (${this.options.maxQueue} requests waiting)`, 1));
    }
    return new Promise<Batched<Out>>((resolve, reject) => {
      const weight = this.weigh(input);
      this.queue.push({ input, weight, enqueuedAt: performance.now(), resolve, reject });
      this.queuedWeight += weight;
      this.schedule();
    });
  }

  /** Resolves once every queued and running request has finished. */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule() {
    while (this.queue.length > 0 && this.running < this.options.concurrency) {
      const waited = performance.now() - this.queue[0]!.enqueuedAt;
      const remaining = this.options.maxWaitMs - waited;
      if (this.queuedWeight < this.options.maxBatchSize && remaining > 0) {
        this.timer ??= setTimeout(() => {
          this.timer = undefined;
          this.schedule();
        }, remaining);
        return;
      }
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.dispatch(this.cut());
    }
  }

  /** Takes requests from the front while they fit in one batch (always at least one). */
  private cut(): Pending<In, Out>[] {
    let weight = this.queue[0]!.weight;
    let count = 1;
    while (count < this.queue.length && weight + this.queue[count]!.weight <= this.options.maxBatchSize) {
      weight += this.queue[count]!.weight;
      count++;
    }
    this.queuedWeight -= weight;
    return this.queue.splice(0, count);
  }

  private async dispatch(batch: Pending<In, Out>[]) {
    this.running++;
    try {
      await this.settle(batch);
    } finally {
      this.running--;
      this.schedule();
      if (this.queue.length === 0 && this.running === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private async settle(batch: Pending<In, Out>[]) {
    const started = performance.now();
    try {
      const outputs = await this.runBatch(batch.map((p) => p.input));
      if (outputs.length !== batch.length) throw new Error(`batch returned ${outputs.length} results for ${batch.length} inputs`);
      const inferenceMs = performance.now() - started;
      batch.forEach((p, i) => p.resolve({ result: outputs[i]!, timing: { queueMs: started - p.enqueuedAt, inferenceMs } }));
    } catch (error) {
      if (batch.length === 1) return batch[0]!.reject(error);
      // One bad request must not fail its neighbours: run each alone so only the culprit fails.
      for (const p of batch) await this.settle([p]);
    }
  }
}
