/**
 * Request bodies. JSON bodies are read once before a route validates them, strictly: the body must be declared as
 * JSON, unencoded, valid UTF-8 and valid JSON, and each way it is not gets its own answer. Bare NaN and Infinity
 * (as Python's json module writes them) get a 422 naming the field rather than a bare "malformed JSON". Upload
 * routes read their multipart forms and raw bodies themselves, with the same refusals from here.
 */
import type { Context, MiddlewareHandler } from "hono";
import { invalidFields, ProblemError, problemType } from "./problem.ts";

/** `application/json` or any `+json` type, with parameters. */
const JSON_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i;
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]+)/i;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const HOW = "send a JSON object with Content-Type: application/json";

/**
 * Reads the body of requests to routes for which `takesJson` is true and hands the parsed value to the route's
 * validator (as this request's c.req.json(), so it is parsed once). Refuses, as problem+json:
 * - a Content-Encoding other than identity → 415 (bodies are not decompressed);
 * - no Content-Type, or one that is not JSON, or a charset other than UTF-8 → 415;
 * - an empty body → 400; bytes that are not UTF-8 → 400 (never silently replaced); text that is not JSON → 400;
 *   NaN or Infinity → 422 naming each field.
 */
export function jsonBodies(takesJson: (c: Context) => boolean): MiddlewareHandler {
  // Not async: a request that is not for a JSON route costs no promise of its own.
  return function jsonBodies(c, next) {
    if (!takesJson(c)) return next();
    requireIdentityEncoding(c, HOW);
    const type = c.req.header("content-type");
    if (type === undefined) throw unsupported(`The request has no Content-Type: ${HOW}.`);
    if (!JSON_TYPE.test(type)) throw unsupported(`The body is '${type.split(";")[0]!.trim()}', not JSON: ${HOW}.`);
    const charset = type.includes(";") ? CHARSET.exec(type)?.[1]?.toLowerCase() : undefined;
    if (charset && charset !== "utf-8" && charset !== "utf8") throw unsupported(`JSON bodies are UTF-8, not ${charset}: ${HOW}.`);
    return bytesOf(c.req.raw).then((bytes) => {
      const value = parse(bytes);
      // The route's validator reads the body through c.req.json(), which would read and parse the text again.
      c.req.json = (() => Promise.resolve(value)) as typeof c.req.json;
      return next();
    });
  };
}

/**
 * The body's bytes: bytes() where the runtime has it (Bun, where it costs less than arrayBuffer(); see
 * docs/performance.md), else arrayBuffer() (Node 20).
 */
function bytesOf(request: Request): Promise<Uint8Array> {
  const withBytes = request as Request & { bytes?: () => Promise<Uint8Array> };
  return typeof withBytes.bytes === "function" ? withBytes.bytes() : request.arrayBuffer().then((buffer) => new Uint8Array(buffer));
}

/** The JSON value of a body, or the ProblemError saying why there is none. */
function parse(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new ProblemError(400, "Invalid UTF-8", `The body is not valid UTF-8 (first bad byte at offset ${firstInvalidByte(bytes)}); JSON must be UTF-8.`, {
      type: problemType("invalid_utf8"),
    });
  }
  try {
    return JSON.parse(text);
  } catch {
    throw explainBadJson(text);
  }
}

/** A 415 problem: the body is not of a type (or encoding) the route reads. */
export const unsupported = (detail: string) => new ProblemError(415, "Unsupported Media Type", detail, { type: problemType("unsupported_media_type") });

/** Throws a 415 for a Content-Encoding other than identity (bodies are never decompressed); `how` says what to send. */
export function requireIdentityEncoding(c: Context, how: string) {
  const encoding = c.req.header("content-encoding")?.trim().toLowerCase();
  if (encoding && encoding !== "identity") throw unsupported(`Content-Encoding '${encoding}' is not accepted: ${how}, uncompressed.`);
}

/** The form of a multipart/form-data body; a 400 problem when it does not parse, saying `how` to send it. */
export async function multipartForm(c: Context, how: string): ReturnType<Request["formData"]> {
  try {
    return await c.req.raw.formData();
  } catch (error) {
    const reason = error instanceof Error && error.message ? ` (${error.message})` : "";
    throw new ProblemError(400, "Malformed multipart body", `The multipart/form-data body cannot be parsed${reason}; ${how}.`, { type: problemType("malformed_multipart") });
  }
}

/** Offset of the first byte that breaks UTF-8, found by decoding growing prefixes (only runs on a refused body). */
function firstInvalidByte(bytes: Uint8Array): number {
  let lo = 0;
  let hi = bytes.length;
  // The longest prefix that decodes (a character cut at its end allowed) ends where the bad byte is.
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, mid), { stream: true });
      lo = mid;
    } catch {
      hi = mid - 1;
    }
  }
  return lo;
}

const NON_FINITE = /^(-?Infinity|NaN)/;
const MARK = "\u0000non-finite:";

/** Why a body that JSON.parse refused is not acceptable: empty (400), NaN/Infinity (422 per field), or malformed (400). */
export function explainBadJson(text: string): ProblemError {
  if (text.trim() === "") {
    return new ProblemError(400, "Empty body", `The request body is empty; ${HOW}.`, { type: problemType("empty_body") });
  }
  const nonFinite = findNonFinite(text);
  if (nonFinite.length > 0) {
    return invalidFields(nonFinite.map(({ path, word }) => ({ path, message: `${word} is not a number JSON allows; send a finite number` })));
  }
  let reason = "";
  try {
    JSON.parse(text);
  } catch (error) {
    reason = error instanceof Error ? `: ${error.message}` : "";
  }
  return new ProblemError(400, "Malformed JSON", `The request body is not valid JSON${reason}.`, { type: problemType("malformed_json") });
}

/** Paths of bare NaN/Infinity words, if the text is otherwise valid JSON. */
function findNonFinite(text: string): { path: string; word: string }[] {
  let out = "";
  let inString = false;
  let found = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (inString) {
      out += ch;
      if (ch === "\\") out += text[++i] ?? "";
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    const match = /[-NI]/.test(ch) ? NON_FINITE.exec(text.slice(i, i + 9)) : null;
    if (match) {
      out += JSON.stringify(MARK + match[1]);
      i += match[1]!.length - 1;
      found = true;
    } else out += ch;
  }
  if (!found) return [];
  let value: unknown;
  try {
    value = JSON.parse(out);
  } catch {
    return [];
  }
  const hits: { path: string; word: string }[] = [];
  const walk = (v: unknown, path: (string | number)[]) => {
    if (typeof v === "string" && v.startsWith(MARK)) hits.push({ path: path.join(".") || "(body)", word: v.slice(MARK.length) });
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(value, []);
  return hits;
}
