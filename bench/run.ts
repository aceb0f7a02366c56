/**
 * npm run bench: drives the server with wrk at 32 connections and, in the same run, a bare Bun.serve that
 * answers a constant body (the ceiling). Prints req/s, p50/p99 latency and the ratio. Not a test: it never fails.
 * Needs wrk (Debian: apt-get install wrk).
 */
import { spawn, spawnSync, type Subprocess } from "bun";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";

const DURATION = process.env.BENCH_SECONDS ?? "5";
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const root = join(import.meta.dir, "..");

type Result = { name: string; rps: number; p50: number; p99: number; errors: number; requests: number };

if (spawnSync(["which", "wrk"]).exitCode !== 0) {
  console.error("wrk is not installed; on Debian or Ubuntu: apt-get install wrk");
  process.exit(1);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function startProcess(cmd: string[], env: Record<string, string>, readyPath: string) {
  const port = await freePort();
  const proc = spawn(cmd, { cwd: root, env: { ...process.env, HOST: "127.0.0.1", PORT: String(port), LOG_LEVEL: "warn", ...env }, stdout: "ignore", stderr: "inherit" });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    const ok = await fetch(url + readyPath).then((r) => r.ok, () => false);
    if (ok) return { url, proc };
    if (proc.exitCode !== null) throw new Error(`${cmd.join(" ")} exited with ${proc.exitCode}`);
    await Bun.sleep(50);
  }
  proc.kill();
  throw new Error(`${cmd.join(" ")} did not become ready`);
}

/** Runs wrk against url with a JSON POST body and parses its summary. */
function wrk(name: string, url: string, body: string, headers: Record<string, string> = {}): Result {
  const dir = mkdtempSync(join(tmpdir(), "bench-"));
  const script = join(dir, "post.lua");
  const lines = [`wrk.method = "POST"`, `wrk.body = ${JSON.stringify(body)}`, `wrk.headers["Content-Type"] = "application/json"`];
  for (const [k, v] of Object.entries(headers)) lines.push(`wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`);
  writeFileSync(script, lines.join("\n"));
  const out = spawnSync(["wrk", "-t1", `-c${CONNECTIONS}`, `-d${DURATION}s`, "--latency", "-s", script, url]).stdout.toString();
  const ms = (label: string) => {
    const m = new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s)`, "m").exec(out);
    if (!m) return NaN;
    return Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[m[2]!]!;
  };
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = num(/Non-2xx or 3xx responses: (\d+)/) + (socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { name, rps: num(/Requests\/sec:\s+([\d.]+)/), p50: ms("50%"), p99: ms("99%"), errors, requests: num(/(\d+) requests in/) };
}

function table(rows: Result[], baseline: Result) {
  const pad = (s: string, n: number) => s.padEnd(n);
  console.log(`${pad("target", 34)}${pad("req/s", 10)}${pad("p50 ms", 9)}${pad("p99 ms", 9)}${pad("errors", 8)}of ceiling`);
  for (const r of rows) {
    console.log(
      `${pad(r.name, 34)}${pad(r.rps.toFixed(0), 10)}${pad(r.p50.toFixed(2), 9)}${pad(r.p99.toFixed(2), 9)}${pad(String(r.errors), 8)}${((100 * r.rps) / baseline.rps).toFixed(1)}%`,
    );
  }
}

const body = JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] });
console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, bun ${Bun.version}; wrk -t1 -c${CONNECTIONS} -d${DURATION}s\n`);

const results: Result[] = [];
const procs: Subprocess[] = [];
try {
  const bare = await startProcess([process.execPath, "bench/bare-server.ts"], {}, "/");
  procs.push(bare.proc);
  wrk("warm-up", bare.url, body);
  results.push(wrk("bare Bun.serve (ceiling)", bare.url, body));
  bare.proc.kill();

  const server = await startProcess([process.execPath, "src/index.ts"], {}, "/readiness");
  procs.push(server.proc);
  wrk("warm-up", `${server.url}/v1/predict`, body);
  results.push(wrk("POST /v1/predict", `${server.url}/v1/predict`, body));
  server.proc.kill();
} finally {
  for (const p of procs) p.kill();
}

const [ceiling, predict] = results as [Result, Result];
table(results, ceiling);
console.log(
  `\n/v1/predict: ${((100 * predict.rps) / ceiling.rps).toFixed(1)}% of the ceiling (target >= 40%), p99 ${predict.p99.toFixed(2)} ms (target < 5 ms), ${predict.errors} errors`,
);
