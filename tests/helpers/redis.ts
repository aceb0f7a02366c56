/**
 * A throwaway redis-server for tests: no persistence, loopback only, on a free port. startRedis() resolves when
 * the server logs "Ready to accept connections" (an event, not a sleep); stop() ends it.
 */
import { readLines } from "./lines.ts";
import type { Subprocess } from "bun";
import { freePort } from "./ports.ts";

const REDIS_SERVER = "/usr/bin/redis-server";

export type TestRedis = {
  /** e.g. redis://127.0.0.1:40123 */
  url: string;
  port: number;
  /** The server's process id, to pause it (SIGSTOP) in tests of a Redis that stops answering. */
  pid: number;
  /** Ends the server (resuming it first if it was paused); resolves once it has exited. Safe to call twice. */
  stop(): Promise<void>;
};

const running = new Set<Subprocess>();
process.once("exit", () => {
  for (const proc of running) proc.kill("SIGKILL");
});

/**
 * Starts redis-server and resolves when it accepts connections. Pass `port` to restart one on the port a
 * stopped server had; otherwise a free port is picked (and another tried if it is taken meanwhile).
 */
export async function startRedis(options: { port?: number } = {}): Promise<TestRedis> {
  let lastError: unknown;
  for (let attempt = 0; attempt < (options.port ? 1 : 3); attempt++) {
    try {
      return await launch(options.port ?? freePort());
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

async function launch(port: number): Promise<TestRedis> {
  const proc = Bun.spawn([REDIS_SERVER, "--port", String(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  running.add(proc);
  const output: string[] = [];
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));

  // Keeps the log, and signals the first "Ready to accept connections".
  const onLine = (line: string) => {
    output.push(line);
    if (line.includes("Ready to accept connections")) resolveReady();
  };
  const exited = Promise.all([readLines(proc.stdout, onLine), readLines(proc.stderr, onLine), proc.exited]).then(() => {
    running.delete(proc);
  });

  const outcome = await Promise.race([ready.then(() => "ready" as const), exited.then(() => "exited" as const)]);
  if (outcome === "exited") {
    throw new Error(`redis-server on port ${port} exited before it was ready (code ${proc.exitCode}); output:\n${output.join("\n")}`);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: proc.pid,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        // A paused server would hold SIGTERM until resumed.
        proc.kill("SIGCONT");
        proc.kill("SIGTERM");
      }
      await exited;
    },
  };
}
