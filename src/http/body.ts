/**
 * Explains why a request body is not acceptable JSON. Runs only after parsing failed, so it costs nothing on
 * the happy path. Python's json module writes NaN and Infinity as bare words; those get a 422 naming the field
 * instead of a bare "malformed JSON".
 */
import { ProblemError, problemType } from "./problem.ts";

const NON_FINITE = /^(-?Infinity|NaN)/;
const MARK = "\u0000non-finite:";

export function explainBadJson(text: string): ProblemError {
  if (text.trim() === "") {
    return new ProblemError(400, "Empty body", "The request body is empty; send a JSON object with Content-Type: application/json.", {
      type: problemType("empty_body"),
    });
  }
  const nonFinite = findNonFinite(text);
  if (nonFinite.length > 0) {
    const errors = nonFinite.map(({ path, word }) => ({ path, message: `${word} is not a number JSON allows; send a finite number` }));
    return new ProblemError(422, "Validation failed", errors.map((e) => `${e.path}: ${e.message}`).join("; "), {
      type: problemType("validation_error"),
      errors,
    });
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
