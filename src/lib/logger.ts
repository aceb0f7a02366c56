/** The one logger: JSON lines on stdout. */
import { writeSync } from "node:fs";
import pino from "pino";

export type Logger = pino.Logger;

export function createLogger(level: string): Logger {
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, stdoutOncePerTurn());
}

/**
 * stdout, written synchronously once per event-loop turn: under load, the access lines of every request answered
 * in one turn go out in one write system call instead of one each. Nothing is held past the turn, and lines still
 * pending when the process exits are written before it does.
 */
function stdoutOncePerTurn(): { write(line: string): void } {
  let pending: string[] = [];
  let pendingLength = 0;
  let scheduled = false;
  let closed = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0 || closed) return;
    const data = Buffer.from(pending.join(""));
    pending = [];
    pendingLength = 0;
    closed = !writeAll(1, data);
  };
  process.on("exit", flush);
  return {
    write(line: string) {
      pending.push(line);
      pendingLength += line.length;
      // A turn that logs this much (a long run of microtasks) writes now rather than holding it all.
      if (pendingLength >= MAX_PENDING) return flush();
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
  };
}

/** Characters of log lines held before a write is due anyway. */
const MAX_PENDING = 64 * 1024;

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Writes all of `data`, waiting out a full pipe; false when the reader has gone (nothing more can be written). */
function writeAll(fd: number, data: Buffer): boolean {
  let offset = 0;
  while (offset < data.length) {
    try {
      offset += writeSync(fd, data, offset);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EPIPE") return false;
      if (code !== "EAGAIN") throw error;
      Atomics.wait(pause, 0, 0, 1); // the pipe is full: let the reader catch up
    }
  }
  return true;
}
