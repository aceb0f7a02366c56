/** The one logger: JSON lines on stdout. */
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
  // Lines wait in memory until flushSync (or until minLength bytes are pending: a write is due anyway).
  const stdout = pino.destination({ dest: 1, sync: true, minLength: 8 * 1024 });
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    stdout.flushSync();
  };
  process.on("exit", flush);
  return {
    write(line: string) {
      stdout.write(line);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
  };
}
