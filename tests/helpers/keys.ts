/** API keys for tests and benchmarks: new random keys, the store a server would load, and key files on disk. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createKeyStore, generateKey, hashKey, parseKeyFile, type KeyFile, type KeyStore, type Scope } from "../../src/auth/key-store.ts";

export type KeySpec<N extends string = string> = { name: N; scopes: Scope[]; rateLimit?: { capacity: number; refillPerSecond: number } };

/** New random keys for `specs`: the store the server would load, the key file it would load it from, and each secret by name. */
export function makeKeys<N extends string>(specs: KeySpec<N>[]): { store: KeyStore; file: KeyFile; secret: Record<N, string> } {
  const secret = {} as Record<N, string>;
  const raw = {
    keys: specs.map((spec) => {
      secret[spec.name] = generateKey();
      return { name: spec.name, sha256: hashKey(secret[spec.name]), scopes: spec.scopes, ...(spec.rateLimit ? { rateLimit: spec.rateLimit } : {}) };
    }),
  };
  const file = parseKeyFile(raw, "test keys");
  return { store: createKeyStore(file), file, secret };
}

const written: string[] = [];
process.once("exit", () => {
  for (const dir of written) rmSync(dir, { recursive: true, force: true });
});

/** Writes `file` as an API_KEYS_FILE in a temporary folder (removed at exit); returns its path. */
export function writeKeyFile(file: KeyFile): string {
  const dir = mkdtempSync(join(tmpdir(), "onnx-serve-keys-"));
  written.push(dir);
  const path = join(dir, "keys.json");
  writeFileSync(path, JSON.stringify(file, null, 2));
  return path;
}

/** Keys for `specs` written to a key file: its path and each secret by name (for servers started by a test). */
export function keysFile<N extends string>(specs: KeySpec<N>[]): { path: string; secret: Record<N, string> } {
  const { file, secret } = makeKeys(specs);
  return { path: writeKeyFile(file), secret };
}
