/** The logger's lines: pino's format, levels, child bindings, errors with their stacks, and fields JSON cannot hold. */
import { describe, expect, test } from "bun:test";
import { createLogger } from "../../../src/observability/logger.ts";

function capture(level: string) {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (line) => lines.push(line) });
  return { logger, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("createLogger", () => {
  test("one JSON object per line: level number, ISO time, fields, msg", () => {
    const { logger, lines, parsed } = capture("info");
    logger.info({ method: "POST", status: 200, latency_ms: 0.123 }, "request");
    logger.warn("careful");
    expect(lines.every((l) => l.endsWith("\n") && !l.slice(0, -1).includes("\n"))).toBe(true);
    const [first, second] = parsed();
    expect(Object.keys(first!)).toEqual(["level", "time", "method", "status", "latency_ms", "msg"]);
    expect(first).toMatchObject({ level: 30, method: "POST", status: 200, latency_ms: 0.123, msg: "request" });
    expect(new Date(first!.time as string).toISOString()).toBe(first!.time as string);
    expect(second).toMatchObject({ level: 40, msg: "careful" });
  });

  test("lines below the level are not written; silent writes none", () => {
    const warn = capture("warn");
    warn.logger.info("no");
    warn.logger.debug({ a: 1 }, "no");
    warn.logger.error("yes");
    expect(warn.parsed().map((l) => l.msg)).toEqual(["yes"]);
    expect(warn.logger.isLevelEnabled("info")).toBe(false);
    expect(warn.logger.isLevelEnabled("warn")).toBe(true);

    const silent = capture("silent");
    silent.logger.fatal("no");
    expect(silent.lines).toEqual([]);
    expect(silent.logger.isLevelEnabled("fatal")).toBe(false);
  });

  test("a child adds its bindings to every line, after level and time, and keeps the level", () => {
    const { logger, parsed } = capture("info");
    const child = logger.child({ request_id: "r-1" }).child({ model: "iris" });
    child.debug("hidden");
    child.info({ status: 500 }, "failed");
    expect(parsed()).toEqual([{ level: 30, time: expect.any(String), request_id: "r-1", model: "iris", status: 500, msg: "failed" }]);
    expect(child.level).toBe("info");
  });

  test("errors are written with type, message, stack, own properties and cause", () => {
    const { logger, parsed } = capture("info");
    const cause = new TypeError("inner");
    const error = Object.assign(new Error("connect ECONNREFUSED", { cause }), { code: "ECONNREFUSED" });
    logger.error({ err: error }, "store failed");
    const err = parsed()[0]!.err as Record<string, unknown>;
    expect(err).toMatchObject({ type: "Error", message: "connect ECONNREFUSED", code: "ECONNREFUSED", cause: { type: "TypeError", message: "inner" } });
    expect(err.stack).toContain("logger.test.ts");
  });

  test("an error that refers to itself is written, not followed forever", () => {
    const { logger, parsed } = capture("info");
    const error = new Error("loop") as Error & { self?: unknown };
    error.self = error;
    logger.error({ err: error }, "odd error");
    expect(parsed()[0]).toMatchObject({ msg: "odd error", err: { type: "Error", message: "loop", self: { message: "loop" } } });
  });

  test("fields JSON cannot hold give a line saying so instead of an exception", () => {
    const { logger, parsed } = capture("info");
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => logger.info({ cycle, big: 1n }, "odd fields")).not.toThrow();
    expect(parsed()[0]).toMatchObject({ level: 30, msg: "odd fields", logError: expect.stringContaining("fields not serializable") });
  });

  test("an unknown level is refused when the logger is made", () => {
    expect(() => createLogger("loud")).toThrow("unknown log level 'loud'");
  });
});
