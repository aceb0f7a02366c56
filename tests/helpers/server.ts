/**
 * Starts the real server as `npm start` does (bun src/main/index.ts) on a free port, and follows its JSON log lines
 * so tests wait for events ("listening", "models loaded") instead of sleeping or polling. The environment is
 * the test process's minus any server setting, plus: PORT=0, HOST=127.0.0.1, LOG_LEVEL=info, MODELS_DIR = a
 * temporary folder with links to models/iris and models/wine, RATE_LIMIT_CAPACITY=1000000; `env` overrides.
 */
import { readLines } from "./lines.ts";
import type { Subprocess } from "bun";
import { join } from "node:path";
import { ConfigSchema } from "../../src/main/config.ts";
import { modelsDirWith } from "./models-dir.ts";

const ROOT = join(import.meta.dir, "..", "..");

export type LogLine = { msg?: string; level?: number; [key: string]: unknown };

export type LaunchedServer = {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Every line the process printed so far, stdout and stderr, in arrival order per stream. */
  logs: string[];
  /** Resolves with the first JSON log line whose msg is `msg` (past or future); rejects if the process exits first. */
  waitForLog(msg: string): Promise<LogLine>;
  /** The process's exit code, once it has exited and both streams are read to the end. */
  exited: Promise<number>;
  /** Sends `signal` (SIGTERM by default) unless the process already exited; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
};

export type RunningServer = LaunchedServer & {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:40123 */
  url: string;
};

const running = new Set<Subprocess>();
process.once("exit", () => {
  for (const proc of running) proc.kill("SIGKILL");
});

/** The environment of a test server: none of the caller's server settings, a free port, quiet but parseable logs. */
function serverEnv(env: Record<string, string>): Record<string, string> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !(e[0] in ConfigSchema.shape)),
  );
  return {
    ...inherited,
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    MODELS_DIR: modelsDirWith(["iris", "wine"]),
    // Every request of a test comes from 127.0.0.1: a limit tests do not hit unless they set one.
    RATE_LIMIT_CAPACITY: "1000000",
    ...env,
  };
}

/** The server as `npm start` runs it. */
export const BUN_SERVER = [process.execPath, "src/main/index.ts"];

/** Spawns the server (by default as `npm start` does) and returns at once; use waitForLog() for what to wait for. */
export function launchServer(env: Record<string, string> = {}, command: string[] = BUN_SERVER): LaunchedServer {
  const proc = Bun.spawn(command, { cwd: ROOT, env: serverEnv(env), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  running.add(proc);
  const logs: string[] = [];
  const parsed: LogLine[] = [];
  const waiters: { msg: string; resolve: (line: LogLine) => void; reject: (error: Error) => void }[] = [];
  let ended = false;

  const onLine = (line: string) => {
    logs.push(line);
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      return;
    }
    if (!json || typeof json !== "object") return;
    const entry = json as LogLine;
    parsed.push(entry);
    for (const w of waiters.filter((w) => w.msg === entry.msg)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(entry);
    }
  };

  const exited = Promise.all([readLines(proc.stdout, onLine), readLines(proc.stderr, onLine), proc.exited]).then(([, , code]) => {
    running.delete(proc);
    ended = true;
    const error = new Error(`server exited with code ${code} (signal ${proc.signalCode ?? "none"}); output:\n${logs.join("\n")}`);
    for (const w of waiters.splice(0)) w.reject(error);
    return code;
  });

  return {
    proc,
    logs,
    exited,
    waitForLog(msg) {
      const seen = parsed.find((l) => l.msg === msg);
      if (seen) return Promise.resolve(seen);
      if (ended) return Promise.reject(new Error(`server exited before logging '${msg}'; output:\n${logs.join("\n")}`));
      return new Promise((resolve, reject) => waiters.push({ msg, resolve, reject }));
    },
    async stop(signal = "SIGTERM") {
      if (!ended) proc.kill(signal);
      return exited;
    },
  };
}

/** Starts the server and resolves once it has logged "models loaded"; `url` comes from its "listening" log line. */
export async function startServer(env: Record<string, string> = {}, command: string[] = BUN_SERVER): Promise<RunningServer> {
  const server = launchServer(env, command);
  try {
    const listening = await server.waitForLog("listening; loading models");
    await server.waitForLog("models loaded");
    if (typeof listening.url !== "string") throw new Error(`the listening log line has no url: ${JSON.stringify(listening)}`);
    return { ...server, url: listening.url.replace(/\/$/, "") };
  } catch (error) {
    await server.stop("SIGKILL");
    throw error;
  }
}
