import { beforeAll, describe, expect, test } from "bun:test";
import pkg from "../../../package.json" with { type: "json" };
import { testApp } from "../../helpers/app.ts";
import { expectProblem } from "../../helpers/http.ts";

type Schema = Record<string, any>;
type Operation = {
  summary?: string;
  parameters?: Schema[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { description: string; content?: Record<string, { schema?: Schema; example?: unknown; examples?: unknown }> }>;
  security?: Record<string, string[]>[];
};
type Document = {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema>; securitySchemes?: Record<string, Schema> };
};

const PATHS = [
  "/v1/predict",
  "/v1/predict/batch",
  "/v1/models/{name}/predict",
  "/v2/predict",
  "/predict",
  "/v1/models/{name}/reload",
  "/health",
  "/readiness",
];
const PREDICT_ERRORS = ["400", "413", "415", "422", "500", "503"];

const { app } = testApp({ env: { MAX_BATCH_INSTANCES: "3" } });
let doc: Document;
let docText: string;

beforeAll(async () => {
  const res = await app.request("/doc");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/json");
  docText = await res.text();
  doc = JSON.parse(docText) as Document;
});

/** The operations of the prediction API (other route families, such as OpenAI-compatible ones, have their own tests). */
const operations = () =>
  Object.entries(doc.paths)
    .filter(([path]) => PATHS.includes(path))
    .flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method, op })));

function resolve(schema: Schema): Schema {
  if (typeof schema.$ref !== "string") return schema;
  const name = schema.$ref.replace("#/components/schemas/", "");
  const target = doc.components.schemas[name];
  if (!target) throw new Error(`dangling $ref ${schema.$ref}`);
  return resolve(target);
}

/**
 * Whether a documented example can be shown for `schema`: its own example, or (as Swagger UI composes them)
 * one for every required property of an object, for the items of an array, for every branch of a union;
 * a single-valued enum or a const is its own example.
 */
function hasExample(raw: Schema): boolean {
  const schema = resolve(raw);
  if (schema.example !== undefined || (Array.isArray(schema.examples) && schema.examples.length > 0)) return true;
  if (schema.const !== undefined || (Array.isArray(schema.enum) && schema.enum.length > 0)) return true;
  const branches = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(branches)) return branches.every(hasExample);
  if (schema.type === "object" && schema.properties) {
    return (schema.required ?? []).every((name: string) => schema.properties[name] && hasExample(schema.properties[name]));
  }
  if (schema.type === "array" && schema.items) return hasExample(schema.items);
  return false;
}

describe("the OpenAPI document", () => {
  test("/doc and /openapi.json serve the same OpenAPI 3.1 document", async () => {
    const res = await app.request("/openapi.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.text()).toBe(docText);
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info).toMatchObject({ title: "ONNX model server", version: pkg.version });
  });

  test("lists every route", () => {
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(PATHS));
    expect(Object.keys(doc.paths["/health"]!)).toEqual(["get"]);
    expect(Object.keys(doc.paths["/readiness"]!)).toEqual(["get"]);
    for (const path of PATHS.filter((p) => p !== "/health" && p !== "/readiness")) expect(Object.keys(doc.paths[path]!)).toEqual(["post"]);
  });

  test("every operation has a summary", () => {
    for (const { path, method, op } of operations()) expect({ path, method, summary: op.summary?.trim() || undefined }).toEqual({ path, method, summary: expect.any(String) });
  });

  test("every operation documents a 200 JSON response with an example", () => {
    for (const { path, method, op } of operations()) {
      const ok = op.responses["200"];
      expect({ path, method, has200: ok !== undefined }).toEqual({ path, method, has200: true });
      const media = ok!.content?.["application/json"];
      const documented = media !== undefined && (media.example !== undefined || media.examples !== undefined || (media.schema !== undefined && hasExample(media.schema)));
      expect({ path, method, example: documented }).toEqual({ path, method, example: true });
    }
  });

  test("every error response is application/problem+json with the Problem schema", () => {
    const problem = resolve(doc.components.schemas.Problem!);
    expect(problem.required?.sort()).toEqual(["detail", "status", "title", "type"]);
    expect(Object.keys(problem.properties)).toEqual(expect.arrayContaining(["detail", "errors", "instance", "status", "title", "type"]));
    for (const { path, method, op } of operations()) {
      for (const [status, response] of Object.entries(op.responses).filter(([s]) => Number(s) >= 400)) {
        expect({ path, method, status, types: Object.keys(response.content ?? {}) }).toEqual({ path, method, status, types: ["application/problem+json"] });
        expect(response.content!["application/problem+json"]!.schema).toEqual({ $ref: "#/components/schemas/Problem" });
      }
    }
  });

  test("each error status has an example of its own, whose status is that status", () => {
    const examples = new Map<string, string>();
    for (const { op } of operations()) {
      for (const [status, response] of Object.entries(op.responses).filter(([s]) => Number(s) >= 400)) {
        for (const content of Object.values(response.content ?? {})) {
          if (content.example === undefined) continue;
          expect((content.example as { status?: number }).status ?? Number(status)).toBe(Number(status));
          examples.set(status, JSON.stringify(content.example));
        }
      }
    }
    // Problem examples for 400, 401, 403, 404, 413, 415, 422, 429, 500 and 503: all different.
    expect([...examples.keys()].sort()).toEqual(expect.arrayContaining(["400", "401", "403", "404", "413", "415", "422", "429", "500", "503"]));
    expect(new Set(examples.values()).size).toBe(examples.size);
  });

  test("a route without a body documents no body errors (413, 415)", () => {
    for (const { path, method, op } of operations()) {
      if (op.requestBody) continue;
      expect({ path, method, statuses: Object.keys(op.responses).filter((s) => s === "413" || s === "415") }).toEqual({ path, method, statuses: [] });
    }
  });

  test("each route documents the errors it can answer", () => {
    const statuses = (path: string, method = "post") => Object.keys(doc.paths[path]![method]!.responses);
    for (const path of ["/v1/predict", "/v1/predict/batch", "/v2/predict", "/predict"]) expect(statuses(path)).toEqual(expect.arrayContaining(PREDICT_ERRORS));
    expect(statuses("/v1/models/{name}/predict")).toEqual(expect.arrayContaining([...PREDICT_ERRORS, "404"]));
    expect(statuses("/v1/models/{name}/reload")).toEqual(expect.arrayContaining(["404", "500"]));
    expect(statuses("/readiness", "get")).toEqual(expect.arrayContaining(["503"]));
  });

  test("/v2/predict's request schema carries the manifest's names and bounds", () => {
    const schema = resolve(doc.paths["/v2/predict"]!.post!.requestBody!.content["application/json"]!.schema);
    expect(schema.type).toBe("object");
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(["sepal_length", "sepal_width", "petal_length", "petal_width"]);
    expect(schema.properties.sepal_length).toMatchObject({ type: "number", exclusiveMinimum: 0, exclusiveMaximum: 30, example: 5.1 });
    expect(schema.properties.petal_width).toMatchObject({ type: "number", exclusiveMinimum: 0, exclusiveMaximum: 30, example: 0.2 });
    expect(schema.example).toEqual({ sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 });
  });

  test("/v1/predict documents the features in order with their bounds", () => {
    const schema = resolve(doc.paths["/v1/predict"]!.post!.requestBody!.content["application/json"]!.schema);
    const features = schema.properties.features;
    expect(features.prefixItems).toHaveLength(4);
    expect(features.prefixItems[2]).toMatchObject({ type: "number", exclusiveMinimum: 0, exclusiveMaximum: 30, description: "Petal length (cm)" });
    expect(schema.example).toEqual({ features: [5.1, 3.5, 1.4, 0.2] });
  });

  test("/v1/predict/batch documents MAX_BATCH_INSTANCES as maxItems", () => {
    const schema = resolve(doc.paths["/v1/predict/batch"]!.post!.requestBody!.content["application/json"]!.schema);
    expect(schema.properties.instances).toMatchObject({ type: "array", minItems: 1, maxItems: 3 });
    expect(doc.paths["/v1/predict/batch"]!.post!.summary).toContain("3 rows");
  });

  test("/predict documents the API-Version header", () => {
    // Header names are case-insensitive; the document names it as Hono reads it.
    const header = doc.paths["/predict"]!.post!.parameters?.find((p) => p.name === "api-version");
    expect(header).toMatchObject({ in: "header", required: false, schema: { type: "string", enum: ["1", "2"] } });
  });

  test("/v1/predict documents that features holds exactly 4 numbers", () => {
    const schema = resolve(doc.paths["/v1/predict"]!.post!.requestBody!.content["application/json"]!.schema);
    expect(schema.properties.features).toMatchObject({ minItems: 4, maxItems: 4 });
  });

  test("protected operations name their scope; every security requirement names a declared scheme", () => {
    const scopes = (path: string, method = "post") => [...new Set((doc.paths[path]![method]!.security ?? []).flatMap((r) => Object.values(r).flat()))];
    expect(scopes("/v1/predict")).toEqual(["predict"]);
    expect(scopes("/v1/models/{name}/reload")).toEqual(["admin"]);
    expect(scopes("/health", "get")).toEqual([]);
    expect(scopes("/readiness", "get")).toEqual([]);
    for (const { op } of operations()) {
      for (const requirement of op.security ?? []) {
        for (const name of Object.keys(requirement)) expect(Object.keys(doc.components.securitySchemes ?? {})).toContain(name);
      }
    }
  });
});

describe("Swagger UI at /docs", () => {
  test("is HTML that loads only assets served by this server", async () => {
    const res = await app.request("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/html");
    const html = await res.text();
    expect(html).toContain("url: '/doc'");
    expect(html).toContain('<a href="/redoc">');

    const refs = [...html.matchAll(/<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.sort()).toEqual(["/docs/assets/swagger-ui-dist/swagger-ui-bundle.js", "/docs/assets/swagger-ui-dist/swagger-ui.css"]);
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);

    const types: Record<string, string> = { js: "text/javascript", css: "text/css" };
    for (const ref of refs) {
      const asset = await app.request(ref);
      expect({ ref, status: asset.status }).toEqual({ ref, status: 200 });
      expect(asset.headers.get("content-type")).toStartWith(types[ref.split(".").pop()!]!);
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
    }
  });

  test("an unknown asset is a 404 problem", async () => {
    await expectProblem(await app.request("/docs/assets/swagger-ui-dist/evil.js"), 404, "/docs/assets/swagger-ui-dist/evil.js");
  });
});

describe("ReDoc at /redoc", () => {
  test("is HTML that loads only assets served by this server", async () => {
    const res = await app.request("/redoc");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/html");
    const html = await res.text();
    expect(html).toContain('Redoc.init("/doc"');
    expect(html).toContain("<title>ONNX model server - ReDoc</title>");

    const refs = [...html.matchAll(/<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs).toEqual(["/redoc/assets/redoc.standalone.js"]);
    // No CDN, and no web fonts (ReDoc's own page loads Montserrat and Roboto from Google Fonts).
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
    expect(html).not.toContain("fonts.googleapis.com");

    const asset = await app.request(refs[0]!);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("content-type")).toStartWith("text/javascript");
    expect(asset.headers.get("cache-control")).toBe("public, max-age=86400");
    const script = await asset.text();
    expect(script.length).toBeGreaterThan(100_000);
    // The standalone bundle: it defines the Redoc global the page calls.
    expect(script).toContain("Redoc");
    // Its sidebar's logo would come from Redocly's CDN.
    expect(script).not.toContain("https://cdn.redoc.ly/");
  });

  test("an unknown asset is a 404 problem", async () => {
    await expectProblem(await app.request("/redoc/assets/redoc.lib.js"), 404, "/redoc/assets/redoc.lib.js");
  });
});
