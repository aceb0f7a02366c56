/** The keys CLI end to end: `bun src/cli/keys.ts ...` in a temporary folder, checked against the key store. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadKeyStore } from "../../../src/auth/key-store.ts";

const CLI = join(import.meta.dir, "..", "..", "..", "src", "cli", "keys.ts");
const dir = mkdtempSync(join(tmpdir(), "api-key-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, "keys.json");

// The caller's API_KEYS_FILE must not leak in: each run says which file it means.
const { API_KEYS_FILE: _ignored, ...baseEnv } = process.env;

/** Runs the CLI in the temporary folder (so no project .env is loaded) and collects its output. */
async function keys(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn([process.execPath, CLI, ...args], { cwd: dir, env: { ...baseEnv, ...env }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

/** The key printed by `create`: stdout must be the key alone on one line. */
function printedKey(stdout: string): string {
  expect(stdout).toMatch(/^osk_[A-Za-z0-9_-]{43}\n$/);
  return stdout.trim();
}

describe("keys CLI", () => {
  let alice = "";
  let bob = "";

  test("create makes the file, prints the key once, and stores only its hash", async () => {
    const r = await keys(["create", "alice", "--scopes", "predict,generate"], { API_KEYS_FILE: file });
    expect(r.code).toBe(0);
    alice = printedKey(r.stdout);
    expect(r.stderr).toContain("X-API-Key");

    const text = readFileSync(file, "utf8");
    expect(text).not.toContain(alice);
    expect(text).not.toContain(alice.slice(4)); // nor its random part
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(loadKeyStore(file).verify(alice)).toEqual({ name: "alice", scopes: ["predict", "generate"] });
  });

  test("a second create keeps the first, and sets a rate limit", async () => {
    const r = await keys(["create", "bob", "--scopes", "admin", "--capacity", "60", "--refill", "1", "--file", file]);
    expect(r.code).toBe(0);
    bob = printedKey(r.stdout);
    const store = loadKeyStore(file);
    expect(store.verify(alice)?.name).toBe("alice");
    expect(store.verify(bob)).toEqual({ name: "bob", scopes: ["admin"], rateLimit: { capacity: 60, refillPerSecond: 1 } });
    expect(readdirSync(dir)).toEqual(["keys.json"]); // no temporary file left behind
  });

  test("a duplicate name is refused and the file left as it was", async () => {
    const before = readFileSync(file, "utf8");
    const r = await keys(["create", "alice", "--scopes", "admin", "--file", file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("'alice' already exists");
    expect(readFileSync(file, "utf8")).toBe(before);
  });

  test("list shows names, scopes and rate limits, never hashes", async () => {
    const r = await keys(["list", "--file", file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^alice\s+predict,generate\s+-$/m);
    expect(r.stdout).toMatch(/^bob\s+admin\s+burst 60, 1\/s$/m);
    expect(r.stdout).not.toMatch(/[0-9a-f]{64}/);
  });

  test("revoke removes the key and keeps the others", async () => {
    const r = await keys(["revoke", "alice", "--file", file]);
    expect(r.code).toBe(0);
    const store = loadKeyStore(file);
    expect(store.verify(alice)).toBeUndefined();
    expect(store.verify(bob)?.name).toBe("bob");
    expect(store.keys.map((k) => k.name)).toEqual(["bob"]);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const again = await keys(["revoke", "alice", "--file", file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("no key named 'alice'");
  });

  test("usage mistakes exit 2 with the usage text, and change nothing", async () => {
    const before = readFileSync(file, "utf8");
    const runs = await Promise.all([
      keys(["create", "carol", "--scopes", "predict,delete", "--file", file]),
      keys(["create", "--scopes", "predict", "--file", file]),
      keys(["frobnicate", "--file", file]),
      keys([]),
      keys(["list"]), // neither --file nor API_KEYS_FILE
    ]);
    for (const r of runs) {
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain("Usage:");
    }
    expect(runs[0]!.stderr).toContain("unknown scope 'delete'");
    expect(runs[1]!.stderr).toContain("needs a key NAME");
    expect(runs[2]!.stderr).toContain("unknown command 'frobnicate'");
    expect(runs[4]!.stderr).toContain("API_KEYS_FILE");
    expect(readFileSync(file, "utf8")).toBe(before);
  });

  test("--help prints the usage and exits 0", async () => {
    const r = await keys(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("create NAME --scopes");
  });
});
