/** The OpenAPI document and Swagger UI, with Swagger UI's assets served from the swagger-ui-dist package (no CDN). */
import { swaggerUI } from "@hono/swagger-ui";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { Hono, type Context } from "hono";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const ASSETS = "/docs/assets";
const assetFiles: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any router, whatever its env and routes
export function docsRouter(api: OpenAPIHono<any, any, any>, info: { title: string; version: string; description: string }) {
  const document = api.getOpenAPI31Document({ openapi: "3.1.0", info });
  const body = JSON.stringify(document);
  const distDir = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  // Read once: the assets are a few MB and never change while the server runs.
  const assets = new Map(Object.entries(assetFiles).map(([file, type]) => [file, { type, data: readFileSync(join(distDir, file)) }]));

  const serveDocument = (c: Context) => c.body(body, 200, { "Content-Type": "application/json" });
  return new Hono()
    .get("/doc", serveDocument)
    .get("/openapi.json", serveDocument)
    .get("/docs", swaggerUI({ url: "/doc", baseUrl: ASSETS, title: `${info.title} - Swagger UI`, persistAuthorization: true }))
    .get(`${ASSETS}/swagger-ui-dist/:file`, (c) => {
      const asset = assets.get(c.req.param("file"));
      if (!asset) return c.notFound();
      return c.body(asset.data, 200, { "Content-Type": asset.type, "Cache-Control": "public, max-age=86400" });
    });
}
