/**
 * Validation messages written for people: zod's defaults ("Invalid input: expected string, received undefined",
 * "Too big: expected number to be <=2") become "is required", "must be at most 2", for every schema that does
 * not bring its own message. Installed when this module loads, and every module that defines schemas imports
 * it (for the configuration, manifests and key files as for request bodies), so no message depends on which
 * module happened to load first.
 */
import { z } from "zod";

type Issue = z.core.$ZodRawIssue;

/** "1 token", "3 tokens". */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** A value as a message names it: `5`, `a string`, `null`, `an array`. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "nothing";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

const TYPE_NAMES: Record<string, string> = {
  int: "an integer",
  number: "a number",
  string: "a string",
  boolean: "true or false",
  array: "an array",
  object: "an object",
  null: "null",
};

/** The message for one issue, or undefined to keep zod's (custom checks bring their own). */
export function humanMessage(issue: Issue): string | undefined {
  // Zod leaves `input` out when the key is missing altogether.
  const missing = !("input" in issue) || issue.input === undefined;
  switch (issue.code) {
    case "invalid_type":
      if (missing) return "is required";
      // A value coerced to a number (z.coerce, as the configuration does) that was not one.
      if (Number.isNaN(issue.input)) return `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
      return `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${describeValue(issue.input)}`;
    case "too_big": {
      const max = Number(issue.maximum);
      if (issue.origin === "string") return `may be at most ${plural(max, "character")} long`;
      if (issue.origin === "array" || issue.origin === "set") return `may hold at most ${plural(max, "item")}`;
      return issue.inclusive === false ? `must be less than ${max}` : `must be at most ${max}`;
    }
    case "too_small": {
      const min = Number(issue.minimum);
      if (issue.origin === "string") return min === 1 ? "must not be empty" : `must be at least ${plural(min, "character")} long`;
      if (issue.origin === "array" || issue.origin === "set") return min === 1 ? "must not be empty" : `must hold at least ${plural(min, "item")}`;
      return issue.inclusive === false ? `must be greater than ${min}` : `must be at least ${min}`;
    }
    case "invalid_value":
      return issue.values.length === 1 ? `must be ${JSON.stringify(issue.values[0])}` : `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "unrecognized_keys":
      return `unknown field${issue.keys.length === 1 ? "" : "s"} ${issue.keys.map((k) => `'${k}'`).join(", ")}`;
    case "invalid_union": {
      if (missing) return "is required";
      const expected = issue.errors.flatMap((branch) => branch.filter((i) => i.code === "invalid_type" && i.path.length === 0).map((i) => (i as { expected: string }).expected));
      if (expected.length !== issue.errors.length) return `is not valid here (got ${describeValue(issue.input)})`;
      return `must be ${[...new Set(expected)].map((e) => TYPE_NAMES[e] ?? e).join(" or ")}, got ${describeValue(issue.input)}`;
    }
    case "invalid_key":
      // A record's key: what its own schema says of it.
      return issue.issues[0]?.message ?? "is not an allowed key";
    case "invalid_format":
      return `must be a valid ${issue.format}`;
    case "not_multiple_of":
      return `must be a multiple of ${String(issue.divisor)}`;
    default:
      return undefined;
  }
}

z.config({ customError: humanMessage });
