import { describe, expect, test } from "bun:test";
import { MicroBatcher, type MicroBatcherOptions } from "../../../../src/engine/scheduling/batcher.ts";
import { EngineError } from "../../../../src/engine/errors.ts";

/**
 * A fake runBatch whose calls stay in flight until the test releases them, so the test decides when a batch
 * finishes and can look at the batcher in between. Each call answers `answer(input)` per input.
 */
class FakeRunner<In, Out> {
  readonly calls: { inputs: In[]; release: () => void; fail: (error: unknown) => void }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private callWaiters: { count: number; resolve: () => void }[] = [];

  constructor(
    private readonly answer: (input: In) => Out,
    /** When false, every call finishes on its own (on a later microtask). */
    private readonly hold = true,
  ) {}

  readonly run = (inputs: In[]): Promise<Out[]> => {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise<Out[]>((resolve, reject) => {
      const done = () => this.inFlight--;
      const release = () => {
        done();
        try {
          resolve(inputs.map(this.answer));
        } catch (error) {
          reject(error);
        }
      };
      const fail = (error: unknown) => {
        done();
        reject(error);
      };
      this.calls.push({ inputs: [...inputs], release, fail });
      for (const w of this.callWaiters.filter((w) => this.calls.length >= w.count)) {
        this.callWaiters.splice(this.callWaiters.indexOf(w), 1);
        w.resolve();
      }
      if (!this.hold) queueMicrotask(release);
    });
  };

  /** Resolves once runBatch has been called `count` times in all. */
  waitForCalls(count: number): Promise<void> {
    if (this.calls.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.callWaiters.push({ count, resolve }));
  }

  get batches(): In[][] {
    return this.calls.map((c) => c.inputs);
  }
}

/**
 * maxWaitMs is 100 ms, not 1: a test that checks synchronously that a batch has NOT run yet would be wrong
 * if the machine stalled for longer than maxWaitMs between two submit() calls.
 */
const WAIT = 100;
const options = (o: Partial<MicroBatcherOptions> = {}): MicroBatcherOptions => ({
  maxBatchSize: 4,
  maxWaitMs: WAIT,
  maxQueue: 1000,
  concurrency: 1,
  ...o,
});

const results = <T>(promises: Promise<{ result: T }>[]) => Promise.all(promises.map((p) => p.then((b) => b.result)));

describe("MicroBatcher", () => {
  test("rejects a maxBatchSize or concurrency below 1", () => {
    const run = async (xs: number[]) => xs;
    expect(() => new MicroBatcher(run, options({ maxBatchSize: 0 }))).toThrow(RangeError);
    expect(() => new MicroBatcher(run, options({ concurrency: 0 }))).toThrow(RangeError);
  });

  test("cuts a batch as soon as it holds maxBatchSize rows", async () => {
    const runner = new FakeRunner((x: number) => x * 10, false);
    const batcher = new MicroBatcher(runner.run, options({ maxBatchSize: 4, maxWaitMs: WAIT, concurrency: 1 }));
    const pending = Array.from({ length: 10 }, (_, i) => batcher.submit(i));
    // The fourth submit filled a batch: it runs at once, without waiting for maxWaitMs.
    expect(runner.batches).toEqual([[0, 1, 2, 3]]);
    expect(await results(pending)).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    // The rest waited for the running batch (concurrency 1), then ran as one full and one partial batch.
    expect(runner.batches).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
  });

  test("runs a partial batch once its oldest request has waited maxWaitMs, and not before", async () => {
    const runner = new FakeRunner((x: string) => x.toUpperCase(), false);
    const batcher = new MicroBatcher(runner.run, options({ maxBatchSize: 8 }));
    const pending = ["a", "b", "c"].map((x) => batcher.submit(x));
    expect(runner.calls).toHaveLength(0);
    expect(batcher.queued).toBe(3);
    await Promise.resolve();
    expect(runner.calls).toHaveLength(0);

    await runner.waitForCalls(1);
    expect(runner.batches).toEqual([["a", "b", "c"]]);
    expect(batcher.queued).toBe(0);
    expect(await results(pending)).toEqual(["A", "B", "C"]);
  });

  test("with maxWaitMs 0 every request runs at once", () => {
    const runner = new FakeRunner((x: number) => x);
    const batcher = new MicroBatcher(runner.run, options({ maxBatchSize: 8, maxWaitMs: 0, concurrency: 2 }));
    void batcher.submit(1);
    expect(runner.batches).toEqual([[1]]);
    void batcher.submit(2);
    expect(runner.batches).toEqual([[1], [2]]);
    for (const call of runner.calls) call.release();
  });

  test("resolves each request with its result and its timing", async () => {
    const runner = new FakeRunner((x: number) => x + 1, false);
    const batcher = new MicroBatcher(runner.run, options({ maxBatchSize: 1 }));
    const batched = await batcher.submit(41);
    expect(batched.result).toBe(42);
    expect(Object.keys(batched.timing).sort()).toEqual(["inferenceMs", "queueMs"]);
    expect(batched.timing.queueMs).toBeGreaterThanOrEqual(0);
    expect(batched.timing.inferenceMs).toBeGreaterThanOrEqual(0);
  });

  describe("weights", () => {
    type Item = { id: string; rows: number };
    const item = (id: string, rows: number): Item => ({ id, rows });

    test("a request counts for its weight in rows", async () => {
      const runner = new FakeRunner((x: Item) => x.id, false);
      const batcher = new MicroBatcher(runner.run, options({ maxBatchSize: 4 }), (x) => x.rows);
      const a = batcher.submit(item("a", 3));
      expect(runner.calls).toHaveLength(0); // 3 rows: not yet full
      const b = batcher.submit(item("b", 1));
      expect(runner.batches.map((batch) => batch.map((x) => x.id))).toEqual([["a", "b"]]); // 3 + 1 = 4 rows: full
      const c = batcher.submit(item("c", 1));
      expect(await results([a, b, c])).toEqual(["a", "b", "c"]);
      expect(runner.batches.map((batch) => batch.map((x) => x.id))).toEqual([["a", "b"], ["c"]]);
    });

    test("never puts more than maxBatchSize rows in a batch; a heavier request runs alone", async () => {
      const runner = new FakeRunner((x: Item) => x.id, false);
      const batcher = new MicroBatcher(runner.run, options({ maxBatchSize: 4 }), (x) => x.rows);
      const items = [item("a", 3), item("b", 1), item("c", 1), item("huge", 6), item("d", 2), item("e", 2)];
      expect(await results(items.map((x) => batcher.submit(x)))).toEqual(["a", "b", "c", "huge", "d", "e"]);
      expect(runner.batches.map((batch) => batch.map((x) => x.id))).toEqual([["a", "b"], ["c"], ["huge"], ["d", "e"]]);
    });
  });

  test("one failing input does not fail the others in its batch", async () => {
    const runner = new FakeRunner((x: string) => {
      if (x === "bad") throw new Error("cannot take bad");
      return `ok:${x}`;
    }, false);
    const batcher = new MicroBatcher(runner.run, options({ maxBatchSize: 3 }));
    const settled = await Promise.allSettled(["a", "bad", "c"].map((x) => batcher.submit(x)));
    expect(settled).toEqual([
      { status: "fulfilled", value: { result: "ok:a", timing: expect.any(Object) } },
      { status: "rejected", reason: new Error("cannot take bad") },
      { status: "fulfilled", value: { result: "ok:c", timing: expect.any(Object) } },
    ]);
    // The failed batch is run again one request at a time, one after another: the retries hold the batch's
    // place, so they never run more batches at once than `concurrency`.
    expect(runner.batches).toEqual([["a", "bad", "c"], ["a"], ["bad"], ["c"]]);
    expect(runner.maxInFlight).toBe(1);
  });

  test("a runBatch returning the wrong number of results fails its requests", async () => {
    const batcher = new MicroBatcher(async (_xs: number[]) => [] as number[], options({ maxBatchSize: 2 }));
    const settled = await Promise.allSettled([1, 2].map((x) => batcher.submit(x)));
    expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected"]);
    for (const s of settled) expect(s.status === "rejected" && String(s.reason)).toBe("Error: batch returned 0 results for 1 inputs");
  });

  test("refuses at once with 'overloaded' when maxQueue requests wait; those already queued still succeed", async () => {
    const runner = new FakeRunner((x: number) => -x);
    const batcher = new MicroBatcher(runner.run, options({ maxBatchSize: 1, maxQueue: 2, concurrency: 1 }));
    const running = batcher.submit(1); // runs at once and is held
    const queued = [batcher.submit(2), batcher.submit(3)];
    expect(batcher.queued).toBe(2);

    const refused = batcher.submit(4);
    expect(Bun.peek.status(refused)).toBe("rejected");
    const error = await refused.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect(error).toMatchObject({ code: "overloaded", retryAfter: 1 });

    for (let n = 1; n <= 3; n++) {
      await runner.waitForCalls(n);
      runner.calls[n - 1]!.release();
    }
    expect(await results([running, ...queued])).toEqual([-1, -2, -3]);
    expect(runner.batches).toEqual([[1], [2], [3]]);
    // Room again: the next request is taken.
    const later = batcher.submit(5);
    await runner.waitForCalls(4);
    runner.calls[3]!.release();
    expect((await later).result).toBe(-5);
  });

  test("never runs more than `concurrency` batches at once", async () => {
    const runner = new FakeRunner((x: number) => x);
    const batcher = new MicroBatcher(runner.run, options({ maxBatchSize: 1, maxWaitMs: 0, concurrency: 2 }));
    const pending = Array.from({ length: 7 }, (_, i) => batcher.submit(i));
    expect(runner.inFlight).toBe(2);
    expect(batcher.queued).toBe(5);
    for (let n = 0; n < 7; n++) {
      await runner.waitForCalls(n + 1);
      expect(runner.inFlight).toBeLessThanOrEqual(2);
      runner.calls[n]!.release();
    }
    expect(await results(pending)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(runner.maxInFlight).toBe(2);
    expect(runner.calls).toHaveLength(7);
  });

  test("drain() resolves at once when idle, and otherwise after every request has settled", async () => {
    const runner = new FakeRunner((x: number) => x);
    const batcher = new MicroBatcher(runner.run, options({ maxBatchSize: 2, maxWaitMs: WAIT, concurrency: 1 }));
    expect(Bun.peek.status(batcher.drain())).toBe("fulfilled");

    const pending = [1, 2, 3].map((x) => batcher.submit(x)); // [1, 2] runs, [3] waits
    const drained = batcher.drain();
    await runner.waitForCalls(1);
    runner.calls[0]!.release();
    await runner.waitForCalls(2);
    expect(Bun.peek.status(drained)).toBe("pending");
    runner.calls[1]!.fail(new Error("boom"));
    await drained;
    expect(pending.map((p) => Bun.peek.status(p))).toEqual(["fulfilled", "fulfilled", "rejected"]);
    await expect(pending[2]!).rejects.toThrow("boom");
  });

  test("every caller gets its own result, across batches and concurrent runs", async () => {
    const runner = new FakeRunner((x: { id: number }) => ({ echo: x.id, square: x.id * x.id }), false);
    const batcher = new MicroBatcher(runner.run, options({ maxBatchSize: 7, maxWaitMs: 1, concurrency: 3 }));
    const ids = Array.from({ length: 100 }, (_, i) => 1000 - i * 7);
    const got = await results(ids.map((id) => batcher.submit({ id })));
    expect(got).toEqual(ids.map((id) => ({ echo: id, square: id * id })));
    expect(runner.batches.flat().map((x) => x.id)).toEqual(ids);
    expect(Math.max(...runner.batches.map((b) => b.length))).toBeLessThanOrEqual(7);
  });
});
