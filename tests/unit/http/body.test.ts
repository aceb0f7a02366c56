import { describe, expect, test } from "bun:test";
import { explainBadJson } from "../../../src/http/body.ts";
import { ProblemError } from "../../../src/http/problem.ts";

const nonFinite = (word: string) => `${word} is not a number JSON allows; send a finite number`;

describe("explainBadJson", () => {
  test.each(["", "   ", "\n\t "])("an empty or blank body (%j) is 400 'Empty body'", (text) => {
    const problem = explainBadJson(text);
    expect(problem).toBeInstanceOf(ProblemError);
    expect(problem.status).toBe(400);
    expect(problem.title).toBe("Empty body");
    expect(problem.options.type).toBe("/problems/empty-body");
    expect(problem.message).toBe("The request body is empty; send a JSON object with Content-Type: application/json.");
    expect(problem.options.errors).toBeUndefined();
  });

  test("bare NaN, Infinity and -Infinity are a 422 naming each field", () => {
    const problem = explainBadJson('{"features": [NaN, 3.5, Infinity, -Infinity]}');
    expect(problem.status).toBe(422);
    expect(problem.title).toBe("Validation failed");
    expect(problem.options.type).toBe("/problems/validation-error");
    expect(problem.options.errors).toEqual([
      { path: "features.0", message: nonFinite("NaN") },
      { path: "features.2", message: nonFinite("Infinity") },
      { path: "features.3", message: nonFinite("-Infinity") },
    ]);
    expect(problem.message).toBe(
      `features.0: ${nonFinite("NaN")}; features.2: ${nonFinite("Infinity")}; features.3: ${nonFinite("-Infinity")}`,
    );
  });

  test("paths reach into nested objects and arrays", () => {
    const problem = explainBadJson('{"a": {"b": [1, {"c": -Infinity}]}, "sepal_length": NaN}');
    expect(problem.status).toBe(422);
    expect(problem.options.errors).toEqual([
      { path: "a.b.1.c", message: nonFinite("-Infinity") },
      { path: "sepal_length", message: nonFinite("NaN") },
    ]);
  });

  test("a bare non-finite body is named (body)", () => {
    expect(explainBadJson("NaN").options.errors).toEqual([{ path: "(body)", message: nonFinite("NaN") }]);
  });

  test("Python's json.dumps output (NaN with spaces, no spaces) is recognised", () => {
    expect(explainBadJson('{"features":[5.1,NaN,1.4,0.2]}').options.errors).toEqual([{ path: "features.1", message: nonFinite("NaN") }]);
  });

  test("NaN inside a string is not flagged: only the bare word counts", () => {
    const problem = explainBadJson('{"note": "NaN and Infinity \\" NaN", "x": NaN}');
    expect(problem.status).toBe(422);
    expect(problem.options.errors).toEqual([{ path: "x", message: nonFinite("NaN") }]);
  });

  test("a string holding NaN in otherwise broken JSON is malformed JSON, not a 422", () => {
    const problem = explainBadJson('{"note": "NaN",}');
    expect(problem.status).toBe(400);
    expect(problem.title).toBe("Malformed JSON");
  });

  test("NaN in JSON that is broken anyway is malformed JSON", () => {
    const problem = explainBadJson('{"features": [NaN, 1,]}');
    expect(problem.status).toBe(400);
    expect(problem.options.type).toBe("/problems/malformed-json");
  });

  test.each(['{"features": [1, 2', "{features: [1]}", "[1, 2,]", "'single'", "nope"])("%j is 400 malformed JSON", (text) => {
    const problem = explainBadJson(text);
    expect(problem.status).toBe(400);
    expect(problem.title).toBe("Malformed JSON");
    expect(problem.options.type).toBe("/problems/malformed-json");
    expect(problem.message).toStartWith("The request body is not valid JSON: ");
    expect(problem.options.errors).toBeUndefined();
  });
});
