/**
 * The one logger: JSON lines on stdout, in pino's format (`{"level":30,"time":"<ISO 8601>",...fields,"msg":"..."}`,
 * errors as `{"type","message","stack",...}`), so tools that read pino's lines read these.
 *
 * Not pino itself: on Bun, pino's access line cost several times the CPU of the same line built by one
 * JSON.stringify (docs/performance.md has the measurement). The API is the subset of pino's the server uses:
 * `info(fields?, msg?)` and the other levels, `child`, `isLevelEnabled`.
 */
import { writeSync } from "node:fs";

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
type LevelName = keyof typeof LEVELS;
type Fields = Record<string, unknown>;
type LogFn = { (msg: string): void; (fields: Fields, msg?: string): void };

export type Logger = { readonly level: LevelName | "silent"; isLevelEnabled(level: LevelName): boolean; child(bindings: Fields): Logger } & Record<
  LevelName,
  LogFn
>;

/** Where lines go: anything with `write(line)`, a Node stream included. */
type Destination = { write(line: string): unknown };

/** A logger at `level` ("silent" logs nothing) writing to stdout, or to `destination`. */
export function createLogger(level: LevelName | "silent" | (string & {}), destination: Destination = stdoutOncePerTurn()): Logger {
  if (level !== "silent" && !(level in LEVELS)) throw new TypeError(`unknown log level '${level}'; use one of ${Object.keys(LEVELS).join(", ")}, silent`);
  const threshold = level === "silent" ? Infinity : LEVELS[level as LevelName];
  return makeLogger(level as LevelName | "silent", threshold, destination, undefined);
}

function makeLogger(level: LevelName | "silent", threshold: number, destination: Destination, bindings: Fields | undefined): Logger {
  const logFn = (value: number): LogFn =>
    value < threshold
      ? () => {}
      : (fieldsOrMsg: Fields | string, msg?: string) => destination.write(formatLine(value, bindings, fieldsOrMsg, msg));
  return {
    level,
    isLevelEnabled: (name) => LEVELS[name] >= threshold,
    child: (more) => makeLogger(level, threshold, destination, { ...bindings, ...more }),
    trace: logFn(LEVELS.trace),
    debug: logFn(LEVELS.debug),
    info: logFn(LEVELS.info),
    warn: logFn(LEVELS.warn),
    error: logFn(LEVELS.error),
    fatal: logFn(LEVELS.fatal),
  };
}

function formatLine(level: number, bindings: Fields | undefined, fieldsOrMsg: Fields | string, msg?: string): string {
  const entry: Fields = { level, time: new Date().toISOString() };
  if (bindings) for (const key in bindings) entry[key] = bindings[key];
  if (typeof fieldsOrMsg === "string") msg = fieldsOrMsg;
  else for (const key in fieldsOrMsg) entry[key] = serialize(fieldsOrMsg[key]);
  if (msg !== undefined) entry.msg = msg;
  try {
    return JSON.stringify(entry) + "\n";
  } catch (error) {
    // A field JSON cannot hold (a cycle, a BigInt) must not turn a log call into a failure of the request.
    return JSON.stringify({ level, time: entry.time, ...bindings, msg, logError: `fields not serializable: ${(error as Error).message}` }) + "\n";
  }
}

/** Errors as pino writes them (JSON.stringify would give `{}`), with their cause; anything else as it is. */
function serialize(value: unknown, depth = 0): unknown {
  if (!(value instanceof Error)) return value;
  // The depth bound keeps an error that refers to itself from looping.
  if (depth > 4) return `[${value.name}: ${value.message}]`;
  const out: Fields = { type: value.name, message: value.message, stack: value.stack };
  // Enumerable properties, inherited ones too (as pino does): some errors keep `code` on a prototype.
  for (const key in value) if (!(key in out)) out[key] = serialize((value as unknown as Fields)[key], depth + 1);
  if (value.cause !== undefined) out.cause = serialize(value.cause, depth + 1);
  return out;
}

/**
 * stdout, written synchronously once per event-loop turn: under load, the access lines of every request answered
 * in one turn go out in one write system call instead of one each. Nothing is held past the turn, and lines still
 * pending when the process exits are written before it does.
 */
function stdoutOncePerTurn(): Destination {
  // Lines are encoded into this buffer as they come, so no line string outlives its log call.
  const buffer = Buffer.allocUnsafe(MAX_PENDING);
  let used = 0;
  let scheduled = false;
  let closed = false;
  const flush = () => {
    scheduled = false;
    if (used === 0 || closed) return;
    const length = used;
    used = 0;
    closed = !writeAll(1, buffer.subarray(0, length));
  };
  process.on("exit", flush);
  return {
    write(line: string) {
      // At most 3 bytes per UTF-16 unit: a line that might not fit goes after what is pending.
      if (used + line.length * 3 > MAX_PENDING) {
        flush();
        if (line.length * 3 > MAX_PENDING) return void (closed ||= !writeAll(1, Buffer.from(line)));
      }
      used += buffer.write(line, used, "utf8");
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
  };
}

/** Bytes of log lines held before a write is due anyway. */
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
