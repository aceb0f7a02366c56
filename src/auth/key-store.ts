/**
 * API keys at rest: a JSON file of SHA-256 hashes (never the keys), parsed with zod, and a store that checks a
 * presented key against every hash in constant time.
 *
 * Plain SHA-256 (no salt, no slow KDF) is enough here because the keys are 256 random bits, not passwords: there is
 * no dictionary to try, so a stolen file does not reveal a usable key.
 */
import { hash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";
import "../lib/messages.ts";

/** What a key may do. A route needs at most one scope; a key holds any number. */
export const SCOPES = ["predict", "generate", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

/** The prefix of every generated key, so a leaked key is recognisable (by secret scanners, say) for what it is. */
export const KEY_PREFIX = "osk_";

/** Key names: short, printable and safe to put in logs and problem details. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export const RateLimitSchema = z.strictObject({
  /** Requests a client may make in one burst. */
  capacity: z.number().int().min(1),
  /** Requests added back to the burst per second. */
  refillPerSecond: z.number().positive().finite(),
});

// Strict objects, so a misspelt field ("rate_limit", "scope") is an error rather than silently ignored.
export const KeyEntrySchema = z.strictObject({
  name: z.string().regex(NAME_PATTERN, "names are 1-64 characters: letters, digits, '.', '_', '@' and '-', starting with a letter or digit"),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be the SHA-256 of the key as 64 lower-case hex digits"),
  scopes: z
    .array(z.enum(SCOPES, { error: (issue) => `unknown scope ${JSON.stringify(issue.input)}; scopes are ${SCOPES.join(", ")}` }))
    .min(1, "a key needs at least one scope"),
  rateLimit: RateLimitSchema.optional(),
});
export type KeyEntry = z.infer<typeof KeyEntrySchema>;

export const KeyFileSchema = z
  .strictObject({ keys: z.array(KeyEntrySchema) })
  .superRefine((file, ctx) => {
    // A name identifies a key in logs and in `keys revoke`; a hash listed twice would make a key two identities.
    for (const field of ["name", "sha256"] as const) {
      const seen = new Map<string, number>();
      file.keys.forEach((entry, index) => {
        const first = seen.get(entry[field]);
        if (first === undefined) seen.set(entry[field], index);
        else ctx.addIssue({ code: "custom", path: ["keys", index, field], message: `duplicate ${field} (same as keys.${first}.${field})` });
      });
    }
  });
export type KeyFile = z.infer<typeof KeyFileSchema>;

/** A key as the app sees it once verified: who it is and what it may do. Never the key or its hash. */
export type ApiKey = {
  readonly name: string;
  readonly scopes: readonly Scope[];
  readonly rateLimit?: { readonly capacity: number; readonly refillPerSecond: number };
};

/** The keys a server accepts. */
export interface KeyStore {
  /** The key whose hash matches `presentedKey`, or undefined. Takes the same time whichever key (if any) matches. */
  verify(presentedKey: string): ApiKey | undefined;
  /** Every key, in file order, without hashes. */
  readonly keys: readonly ApiKey[];
}

/** A key file that cannot be read or is invalid; the message names the file and the field. */
export class KeyStoreError extends Error {
  override name = "KeyStoreError";
}

/** The SHA-256 of a key as 64 lower-case hex digits: what the key file stores. */
export function hashKey(key: string): string {
  return hash("sha256", key, "hex");
}

/** A new random key: {@link KEY_PREFIX} then 32 random bytes in base64url (43 characters). */
export function generateKey(): string {
  return KEY_PREFIX + randomBytes(32).toString("base64url");
}

/**
 * Checks parsed JSON against the key file's schema.
 * @param source - Named in errors: the file's path, say.
 * @throws {KeyStoreError} naming `source` and every invalid field, e.g. `keys.json: keys.1.sha256: must be ...`.
 */
export function parseKeyFile(raw: unknown, source: string): KeyFile {
  const result = KeyFileSchema.safeParse(raw);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
  throw new KeyStoreError(`${source}: ${issues.join("; ")}`);
}

/**
 * Reads and checks a key file.
 * @throws {KeyStoreError} if the file is missing, is not JSON, or does not match the schema; the message names the file.
 */
export function readKeyFile(path: string): KeyFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new KeyStoreError(`${path}: no such file; create a key with: bun src/cli/keys.ts create NAME --scopes predict --file ${path}`);
    }
    throw new KeyStoreError(`${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new KeyStoreError(`${path}: not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseKeyFile(raw, path);
}

/**
 * A store over an already-parsed key file (see {@link parseKeyFile}).
 *
 * @example
 * ```ts
 * const keys = createKeyStore(parseKeyFile({ keys: [{ name: "ci", sha256: hashKey(key), scopes: ["predict"] }] }, "test"))
 * keys.verify(key)?.name // "ci"
 * ```
 */
export function createKeyStore(file: KeyFile): KeyStore {
  // Frozen, because the same objects are handed to every request through c.set("apiKey", ...).
  const entries = file.keys.map((entry) => ({
    hash: Buffer.from(entry.sha256, "hex"),
    key: Object.freeze({
      name: entry.name,
      scopes: Object.freeze([...new Set(entry.scopes)]),
      ...(entry.rateLimit ? { rateLimit: Object.freeze({ ...entry.rateLimit }) } : {}),
    }) as ApiKey,
  }));
  const keys = Object.freeze(entries.map((e) => e.key));

  return {
    keys,
    verify(presentedKey: string): ApiKey | undefined {
      // Hashing first makes every comparison 32 bytes against 32 bytes, whatever the presented key's length.
      const presented = hash("sha256", presentedKey, "buffer");
      let match: ApiKey | undefined;
      // No early exit: every stored hash is compared, so the time says neither which key matched nor whether one did.
      for (const entry of entries) {
        const equal = timingSafeEqual(entry.hash, presented);
        match = equal ? entry.key : match;
      }
      return match;
    },
  };
}

/**
 * Reads the key file at `path` (the server's `API_KEYS_FILE`) into a {@link KeyStore}.
 * The file is read once: keys created or revoked later apply when the server next starts.
 *
 * @throws {KeyStoreError} naming the file and the invalid field.
 * @example
 * ```ts
 * const keys = loadKeyStore(process.env.API_KEYS_FILE!)
 * app.use(apiKeyAuth({ keys, scopeFor: () => "predict" }))
 * ```
 */
export function loadKeyStore(path: string): KeyStore {
  return createKeyStore(readKeyFile(path));
}
