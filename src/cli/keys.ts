/**
 * Manages the API key file: `bun src/cli/keys.ts <create|list|revoke> ...` (npm run keys -- ...).
 * The file holds only SHA-256 hashes; `create` prints the new key once and nowhere keeps it.
 *
 * Exit codes: 0 done, 1 failed (file unreadable or invalid, duplicate or unknown name), 2 usage error.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { generateKey, hashKey, KeyEntrySchema, KeyStoreError, parseKeyFile, readKeyFile, SCOPES, type KeyEntry, type KeyFile, type Scope } from "../auth/key-store.ts";

export const USAGE = `Usage: npm run keys -- <command> [options]

Commands:
  create NAME --scopes SCOPES [--capacity N --refill R]
                      Make a new key, print it once on stdout, store its hash.
                      SCOPES is a comma-separated list of: ${SCOPES.join(", ")}.
                      --capacity/--refill set a rate limit: a burst of N requests,
                      refilled at R per second (give both or neither).
  list                Show each key's name, scopes and rate limit.
  revoke NAME         Remove a key.

Options:
  --file PATH         The key file (default: $API_KEYS_FILE).
  -h, --help          Show this help.

The server reads the key file when it starts: restart it to apply changes.`;

/** A mistake in the command line: exit 2 with the usage text. */
class UsageError extends Error {}
/** A failure doing what was asked: exit 1 with the message. */
class CommandError extends Error {}

export type Io = { out: (line: string) => void; err: (line: string) => void };

/** Runs the CLI; returns the exit code. */
export function main(argv: string[], env: Record<string, string | undefined> = process.env, io: Io = defaultIo): number {
  try {
    run(argv, env, io);
    return 0;
  } catch (error) {
    if (error instanceof UsageError || isParseArgsError(error)) {
      io.err(`error: ${(error as Error).message}\n\n${USAGE}`);
      return 2;
    }
    if (error instanceof CommandError || error instanceof KeyStoreError) {
      io.err(`error: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

function run(argv: string[], env: Record<string, string | undefined>, io: Io): void {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      file: { type: "string" },
      scopes: { type: "string" },
      capacity: { type: "string" },
      refill: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === "help") {
    io.out(USAGE);
    return;
  }
  if (command === undefined) throw new UsageError("no command given");
  if (!["create", "list", "revoke"].includes(command)) throw new UsageError(`unknown command '${command}'`);

  // Options meant for another command are refused rather than ignored: `revoke x --scopes admin` is a mistake.
  const allowed: Record<string, string[]> = { create: ["file", "scopes", "capacity", "refill"], list: ["file"], revoke: ["file"] };
  for (const option of Object.keys(values)) {
    if (!allowed[command]!.includes(option)) throw new UsageError(`'${command}' takes no --${option}`);
  }
  const wantsName = command !== "list";
  if (wantsName && rest.length === 0) throw new UsageError(`'${command}' needs a key NAME`);
  if (rest.length > (wantsName ? 1 : 0)) throw new UsageError(`unexpected argument '${rest[wantsName ? 1 : 0]}'`);

  const file = values.file ?? (env.API_KEYS_FILE || undefined);
  if (!file) throw new UsageError("no key file: pass --file PATH or set API_KEYS_FILE");

  if (command === "create") create(file, rest[0]!, values, io);
  else if (command === "list") list(file, io);
  else revoke(file, rest[0]!, io);
}

function create(file: string, name: string, options: { scopes?: string; capacity?: string; refill?: string }, io: Io): void {
  if (!KeyEntrySchema.shape.name.safeParse(name).success) {
    throw new UsageError(`bad key name '${name}': names are 1-64 characters: letters, digits, '.', '_', '@' and '-', starting with a letter or digit`);
  }
  const scopes = parseScopes(options.scopes);
  const rateLimit = parseRateLimit(options.capacity, options.refill);

  const keyFile = readOrEmpty(file);
  if (keyFile.keys.some((k) => k.name === name)) throw new CommandError(`${file}: a key named '${name}' already exists; revoke it first or pick another name`);

  const key = generateKey();
  const entry: KeyEntry = { name, sha256: hashKey(key), scopes, ...(rateLimit ? { rateLimit } : {}) };
  // Checked again as a whole, so the CLI can never write a file the server would refuse.
  writeKeyFile(file, parseKeyFile({ keys: [...keyFile.keys, entry] }, file));

  // The key goes to stdout alone, so `KEY=$(npm run --silent keys -- create ...)` captures just it.
  io.out(key);
  io.err(
    `Created key '${name}' (scopes: ${scopes.join(", ")}${rateLimit ? `; ${describeRateLimit(rateLimit)}` : ""}) in ${file}.\n` +
      `This is the only time the key is shown; store it now. Send it as:\n` +
      `  curl -H "X-API-Key: <key>" ...   or   curl -H "Authorization: Bearer <key>" ...\n` +
      `Restart the server to apply.`,
  );
}

function list(file: string, io: Io): void {
  const { keys } = readKeyFile(file);
  if (keys.length === 0) {
    io.err(`${file}: no keys`);
    return;
  }
  const rows = [["NAME", "SCOPES", "RATE LIMIT"], ...keys.map((k) => [k.name, k.scopes.join(","), k.rateLimit ? describeRateLimit(k.rateLimit) : "-"])];
  const widths = [0, 1].map((col) => Math.max(...rows.map((r) => r[col]!.length)));
  for (const row of rows) io.out(`${row[0]!.padEnd(widths[0]!)}  ${row[1]!.padEnd(widths[1]!)}  ${row[2]}`.trimEnd());
}

function revoke(file: string, name: string, io: Io): void {
  const keyFile = readKeyFile(file);
  const keys = keyFile.keys.filter((k) => k.name !== name);
  if (keys.length === keyFile.keys.length) throw new CommandError(`${file}: no key named '${name}'`);
  writeKeyFile(file, { keys });
  io.err(`Revoked key '${name}' in ${file}. Restart the server to apply.`);
}

function parseScopes(text: string | undefined): Scope[] {
  if (text === undefined) throw new UsageError(`'create' needs --scopes, a comma-separated list of: ${SCOPES.join(", ")}`);
  const scopes = text.split(",").map((s) => s.trim()).filter(Boolean);
  if (scopes.length === 0) throw new UsageError(`--scopes is empty; give one or more of: ${SCOPES.join(", ")}`);
  for (const scope of scopes) {
    if (!(SCOPES as readonly string[]).includes(scope)) throw new UsageError(`unknown scope '${scope}'; scopes are ${SCOPES.join(", ")}`);
  }
  return [...new Set(scopes as Scope[])];
}

function parseRateLimit(capacity: string | undefined, refill: string | undefined): KeyEntry["rateLimit"] {
  if (capacity === undefined && refill === undefined) return undefined;
  if (capacity === undefined || refill === undefined) throw new UsageError("give both --capacity and --refill, or neither");
  // Number("") is 0 and Number(" 5") is 5; the pattern keeps to plain decimals.
  const decimal = /^\d+(\.\d+)?$/;
  const c = decimal.test(capacity) ? Number(capacity) : NaN;
  const r = decimal.test(refill) ? Number(refill) : NaN;
  if (!Number.isInteger(c) || c < 1) throw new UsageError(`--capacity must be a whole number of requests, 1 or more; got '${capacity}'`);
  if (!(r > 0) || !Number.isFinite(r)) throw new UsageError(`--refill must be a number of requests per second above 0; got '${refill}'`);
  return { capacity: c, refillPerSecond: r };
}

function describeRateLimit(limit: NonNullable<KeyEntry["rateLimit"]>): string {
  return `burst ${limit.capacity}, ${limit.refillPerSecond}/s`;
}

/** The file's contents, or no keys if it does not exist yet (the first `create` makes it). */
function readOrEmpty(file: string): KeyFile {
  try {
    statSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { keys: [] };
  }
  return readKeyFile(file);
}

/**
 * Replaces the file atomically: a temporary file beside it (same file system, so rename is atomic), written, synced
 * and renamed over it. A crash or a full disk leaves the old file whole, and the server never reads half a file.
 * Mode 0600: hashes are not keys, but nobody else needs to read them.
 */
function writeKeyFile(file: string, content: KeyFile): void {
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    // "wx" fails if the name is taken rather than following a link someone planted there.
    const fd = openSync(temp, "wx", 0o600);
    try {
      writeSync(fd, `${JSON.stringify(content, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // The umask may have narrowed 0600 further, never widened it; chmod makes it exactly 0600.
    chmodSync(temp, 0o600);
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw new CommandError(`${file}: cannot write the key file: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
}

const defaultIo: Io = { out: (line) => console.log(line), err: (line) => console.error(line) };

if (import.meta.main) process.exit(main(process.argv.slice(2)));
