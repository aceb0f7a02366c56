/**
 * The OpenAPI document and Swagger UI, with Swagger UI's assets served from the swagger-ui-dist package (no CDN).
 * The document follows the models: it is generated again whenever a model's served manifest changes.
 */
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

export type DocsInfo = { title: string; version: string; description: string };

/**
 * @param api The router whose routes the document describes.
 * @param revision Changes whenever what the document says may have changed (a model's manifest, say).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any router, whatever its env and routes
export function docsRouter(api: OpenAPIHono<any, any, any>, info: DocsInfo, revision: () => number) {
  let cached: { revision: number; body: string } | undefined;
  const document = () => {
    if (cached?.revision !== revision()) cached = { revision: revision(), body: JSON.stringify(api.getOpenAPI31Document({ openapi: "3.1.0", info })) };
    return cached.body;
  };
  const distDir = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  // Read once: the assets are a few MB and never change while the server runs.
  const assets = new Map(Object.entries(assetFiles).map(([file, type]) => [file, { type, data: readFileSync(join(distDir, file)) }]));

  const serveDocument = (c: Context) => c.body(document(), 200, { "Content-Type": "application/json" });
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
