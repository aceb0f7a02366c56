/** Shared by the benchmarks: processes on free ports, wrk runs, and a table printer. */
import { spawn, spawnSync, type Subprocess } from "bun";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keysFile } from "../tests/helpers/keys.ts";
import { freePort } from "../tests/helpers/ports.ts";

export const root = join(import.meta.dir, "..");
export const DURATION = process.env.BENCH_SECONDS ?? "5";
export const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);

export type Result = { name: string; rps: number; p50: number; p99: number; errors: number; requests: number };


const running = new Set<Subprocess>();
process.on("exit", () => running.forEach((p) => p.kill()));

/** Starts a server script on a free port and waits until `ready` answers 200 (or anything, if `anyAnswer`). */
export async function startServer(script: string, env: Record<string, string>, ready = "/readiness", anyAnswer = false) {
  const port = freePort();
  const proc = spawn([process.execPath, script], {
    cwd: root,
    env: { ...process.env, HOST: "127.0.0.1", PORT: String(port), LOG_LEVEL: "warn", ...env },
    stdout: "ignore",
    stderr: "inherit",
  });
  running.add(proc);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 1200; i++) {
    const ok = await fetch(url + ready).then((r) => anyAnswer || r.ok, () => false);
    if (ok) return { url, pid: proc.pid, stop: () => (proc.kill(), running.delete(proc)) };
    if (proc.exitCode !== null) throw new Error(`${script} exited with ${proc.exitCode}`);
    await Bun.sleep(50);
  }
  proc.kill();
  throw new Error(`${script} did not become ready`);
}

/** A new API key with the predict scope and a bucket that never empties, in a keys file of its own. */
export function unlimitedKey(): { key: string; file: string } {
  const { path, secret } = keysFile([{ name: "bench", scopes: ["predict"], rateLimit: { capacity: 1e9, refillPerSecond: 1e9 } }]);
  return { key: secret.bench, file: path };
}

export function requireWrk() {
  if (spawnSync(["which", "wrk"]).exitCode !== 0) {
    console.error("wrk is not installed; on Debian or Ubuntu: apt-get install wrk");
    process.exit(1);
  }
}

/**
 * A wrk script that POSTs `body`: JSON text, or the bytes of a file sent as `contentType` (an image, say).
 * Returns the script's path.
 */
export function postScript(body: string | { file: string; contentType: string }, headers: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "bench-"));
  const script = join(dir, "post.lua");
  const lines =
    typeof body === "string"
      ? [`wrk.method = "POST"`, `wrk.body = ${JSON.stringify(body)}`, `wrk.headers["Content-Type"] = "application/json"`]
      : [`wrk.method = "POST"`, `local f = io.open(${JSON.stringify(body.file)}, "rb")`, `wrk.body = f:read("*a")`, `f:close()`, `wrk.headers["Content-Type"] = ${JSON.stringify(body.contentType)}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`);
  writeFileSync(script, lines.join("\n"));
  return script;
}

/** wrk's command line: 1 thread, `connections` connections, DURATION seconds, latency percentiles. */
export const wrkCommand = (url: string, script: string, connections = CONNECTIONS) => ["wrk", "-t1", `-c${connections}`, `-d${DURATION}s`, "--latency", "-s", script, url];

/** Runs wrk (1 thread, CONNECTIONS connections) with a JSON POST body and parses its summary. */
export function wrk(name: string, url: string, body: string, headers: Record<string, string> = {}): Result {
  return parseWrk(name, spawnSync(wrkCommand(url, postScript(body, headers))).stdout.toString());
}

/** The figures of wrk's summary (`--latency`). */
export function parseWrk(name: string, out: string): Result {
  const ms = (label: string) => {
    const m = new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s)`, "m").exec(out);
    return m ? Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[m[2]!]! : NaN;
  };
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = num(/Non-2xx or 3xx responses: (\d+)/) + (socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { name, rps: num(/Requests\/sec:\s+([\d.]+)/), p50: ms("50%"), p99: ms("99%"), errors, requests: num(/(\d+) requests in/) };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function printTable(header: string[], rows: (string | number)[][]) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)) + 2);
  const line = (cells: (string | number)[]) => cells.map((c, i) => String(c).padEnd(widths[i]!)).join("");
  console.log(line(header));
  for (const r of rows) console.log(line(r));
}
