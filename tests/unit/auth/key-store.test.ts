import { afterAll, describe, expect, spyOn, test } from "bun:test";
import * as crypto from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createKeyStore,
  generateKey,
  hashKey,
  KEY_PREFIX,
  KeyStoreError,
  loadKeyStore,
  parseKeyFile,
} from "../../../src/auth/key-store.ts";

const dir = mkdtempSync(join(tmpdir(), "api-key-store-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
/** Writes `content` (a string as is, anything else as JSON) to a new file and returns its path. */
function keyFile(content: unknown): string {
  const path = join(dir, `keys-${++files}.json`);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

/** The KeyStoreError message loadKeyStore throws for `content`. */
function loadError(content: unknown): { path: string; message: string } {
  const path = keyFile(content);
  try {
    loadKeyStore(path);
  } catch (error) {
    expect(error).toBeInstanceOf(KeyStoreError);
    return { path, message: (error as Error).message };
  }
  throw new Error(`expected ${path} to be refused`);
}

const aliceKey = generateKey();
const bobKey = generateKey();
const valid = {
  keys: [
    { name: "alice", sha256: hashKey(aliceKey), scopes: ["predict", "generate", "admin"], rateLimit: { capacity: 60, refillPerSecond: 1 } },
    { name: "bob", sha256: hashKey(bobKey), scopes: ["predict"] },
  ],
};

describe("hashKey and generateKey", () => {
  test("hashKey is the hex SHA-256", () => {
    // The SHA-256 of "abc", from FIPS 180-2.
    expect(hashKey("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  test("generateKey gives the prefix and 32 random bytes in base64url", () => {
    const key = generateKey();
    expect(key.startsWith(KEY_PREFIX)).toBe(true);
    const body = key.slice(KEY_PREFIX.length);
    expect(body).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(body, "base64url").length).toBe(32);
    expect(generateKey()).not.toBe(key);
  });
});

describe("loadKeyStore", () => {
  test("reads a valid file", () => {
    const store = loadKeyStore(keyFile(valid));
    expect(store.keys).toEqual([
      { name: "alice", scopes: ["predict", "generate", "admin"], rateLimit: { capacity: 60, refillPerSecond: 1 } },
      { name: "bob", scopes: ["predict"] },
    ]);
    // What the app sees of a key never includes its hash.
    expect(JSON.stringify(store.keys)).not.toContain(valid.keys[0]!.sha256);
  });

  test("an empty key list is valid", () => {
    expect(loadKeyStore(keyFile({ keys: [] })).keys).toEqual([]);
  });

  test("a missing file is named", () => {
    const path = join(dir, "missing.json");
    expect(() => loadKeyStore(path)).toThrow(`${path}: no such file`);
  });

  test("bad JSON names the file", () => {
    const { path, message } = loadError('{"keys": [');
    expect(message).toStartWith(`${path}: not valid JSON`);
  });

  test("a bad hash names the file and the field", () => {
    const { path, message } = loadError({ keys: [valid.keys[0], { ...valid.keys[1], sha256: "abc123" }] });
    expect(message).toStartWith(`${path}: keys.1.sha256: `);
    expect(message).toContain("64 lower-case hex");
  });

  test("an upper-case hash is refused", () => {
    const { message } = loadError({ keys: [{ ...valid.keys[1], sha256: hashKey(bobKey).toUpperCase() }] });
    expect(message).toContain("keys.0.sha256");
  });

  test("duplicate names are refused", () => {
    const { path, message } = loadError({ keys: [valid.keys[0], { ...valid.keys[1], name: "alice" }] });
    expect(message).toBe(`${path}: keys.1.name: duplicate name (same as keys.0.name)`);
  });

  test("duplicate hashes are refused", () => {
    const { message } = loadError({ keys: [valid.keys[0], { ...valid.keys[1], sha256: valid.keys[0]!.sha256 }] });
    expect(message).toContain("keys.1.sha256: duplicate sha256");
  });

  test("an unknown scope is named", () => {
    const { path, message } = loadError({ keys: [{ ...valid.keys[1], scopes: ["predict", "delete"] }] });
    expect(message).toStartWith(`${path}: keys.0.scopes.1: unknown scope "delete"`);
  });

  test("misspelt and missing fields are refused", () => {
    expect(loadError({ keys: [{ ...valid.keys[1], rate_limit: { capacity: 1, refillPerSecond: 1 } }] }).message).toContain("rate_limit");
    expect(loadError({ keys: [{ name: "x", sha256: hashKey("x") }] }).message).toContain("keys.0.scopes");
    expect(loadError({ keys: [{ ...valid.keys[1], rateLimit: { capacity: 0, refillPerSecond: 1 } }] }).message).toContain("keys.0.rateLimit.capacity");
    expect(loadError({ key: [] }).message).toContain("keys");
  });
});

describe("KeyStore.verify", () => {
  const store = createKeyStore(parseKeyFile(valid, "test"));

  test("finds the key presented", () => {
    expect(store.verify(aliceKey)?.name).toBe("alice");
    expect(store.verify(bobKey)).toEqual({ name: "bob", scopes: ["predict"] });
  });

  test("rejects an unknown key", () => {
    expect(store.verify(generateKey())).toBeUndefined();
    expect(store.verify("")).toBeUndefined();
    expect(store.verify(valid.keys[0]!.sha256)).toBeUndefined(); // the hash is not the key
  });

  test("rejects a near miss: the key with one character changed, cut short or extended", () => {
    const last = aliceKey.at(-1) === "A" ? "B" : "A";
    expect(store.verify(aliceKey.slice(0, -1) + last)).toBeUndefined();
    expect(store.verify("X" + aliceKey.slice(1))).toBeUndefined();
    expect(store.verify(aliceKey.slice(0, -1))).toBeUndefined();
    expect(store.verify(aliceKey + "A")).toBeUndefined();
    expect(store.verify(` ${aliceKey}`)).toBeUndefined();
  });

  test("compares against every stored hash, whichever key matches and whether one does", () => {
    // Timings are not asserted (too noisy on a shared machine); the count of constant-time comparisons is.
    const spy = spyOn(crypto, "timingSafeEqual");
    try {
      for (const presented of [aliceKey, bobKey, generateKey()]) {
        spy.mockClear();
        store.verify(presented);
        expect(spy).toHaveBeenCalledTimes(valid.keys.length);
      }
    } finally {
      spy.mockRestore();
    }
  });

  test("keys handed out cannot be changed by a handler", () => {
    const key = store.verify(aliceKey)!;
    expect(Object.isFrozen(key)).toBe(true);
    expect(Object.isFrozen(key.scopes)).toBe(true);
  });
});
