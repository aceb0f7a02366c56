/**
 * The OpenAPI document, Swagger UI at /docs and ReDoc at /redoc. Both pages load their assets from this server,
 * read from the swagger-ui-dist and redoc packages (no CDN, no web fonts): they work on a network without internet.
 * The document follows the models: it is generated again whenever a model's served manifest changes.
 */
import { SwaggerUI } from "@hono/swagger-ui";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { Hono, type Context } from "hono";
import { html, raw } from "hono/html";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const SWAGGER_ASSETS = "/docs/assets";
const REDOC_ASSETS = "/redoc/assets";
const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";
// ReDoc's default theme names Roboto and Montserrat, which pages usually load from Google Fonts: the system's instead.
const REDOC_OPTIONS = {
  theme: {
    typography: {
      fontFamily: "system-ui, sans-serif",
      headings: { fontFamily: "system-ui, sans-serif" },
      code: { fontFamily: "ui-monospace, monospace" },
    },
  },
};

// ReDoc's sidebar footer ("API docs by Redocly") shows a logo from cdn.redoc.ly, whatever the options say: the bundle
// is served with an empty image in its place, so the page asks nothing of other servers.
const REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg";
const EMPTY_IMAGE = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E";

export type DocsInfo = { title: string; version: string; description: string };

type Asset = { type: string; data: Uint8Array<ArrayBuffer> };

/**
 * Reads `files` (name → content type) from `folder` of the installed package `name`: they are a few MB and never
 * change while the server runs, so they are read once. The package is resolved as Node resolves it, so the Node bundle (dist/node.js)
 * finds it too. `edit` rewrites a text file's content.
 */
function packageAssets(name: string, folder: string, files: Record<string, string>, edit?: (text: string) => string): Map<string, Asset> {
  const dir = join(dirname(createRequire(import.meta.url).resolve(`${name}/package.json`)), folder);
  const read = (file: string) => (edit ? Buffer.from(edit(readFileSync(join(dir, file), "utf8"))) : readFileSync(join(dir, file)));
  return new Map(Object.entries(files).map(([file, type]) => [file, { type, data: read(file) }]));
}

/** `make()`'s value, made on the first call. */
function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

function serveAsset(assets: () => Map<string, Asset>) {
  return (c: Context) => {
    const asset = assets().get(c.req.param("file") ?? "");
    if (!asset) return c.notFound();
    return c.body(asset.data, 200, { "Content-Type": asset.type, "Cache-Control": "public, max-age=86400" });
  };
}

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
  // Read when first asked for, not at start: most servers (and every route test's app) never serve them.
  const swaggerAssets = once(() => packageAssets("swagger-ui-dist", ".", { "swagger-ui.css": CSS, "swagger-ui-bundle.js": JS }));
  const redocAssets = once(() => packageAssets("redoc", "bundles", { "redoc.standalone.js": JS }, (js) => js.replaceAll(REDOC_CDN_LOGO, EMPTY_IMAGE)));

  // Swagger UI's own markup (it names the assets under SWAGGER_ASSETS/swagger-ui-dist/), in a page that also links the other views.
  const swaggerPage = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${info.title} - Swagger UI</title>
<style>nav { font: 14px sans-serif; max-width: 1460px; margin: 0 auto; padding: 12px 20px 0; box-sizing: border-box; }</style>
</head>
<body>
<nav><a href="/redoc">ReDoc</a> · <a href="/doc">OpenAPI document</a> · <a href="/">Playground</a></nav>
${raw(SwaggerUI({ url: "/doc", baseUrl: SWAGGER_ASSETS, persistAuthorization: true }))}
</body>
</html>`;
  const redocPage = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${info.title} - ReDoc</title>
<style>body { margin: 0; padding: 0; }</style>
</head>
<body>
<div id="redoc"></div>
<script src="${REDOC_ASSETS}/redoc.standalone.js"></script>
<script>Redoc.init("/doc", ${raw(JSON.stringify(REDOC_OPTIONS))}, document.getElementById("redoc"));</script>
</body>
</html>`;

  const serveDocument = (c: Context) => c.body(document(), 200, { "Content-Type": "application/json" });
  return new Hono()
    .get("/doc", serveDocument)
    .get("/openapi.json", serveDocument)
    .get("/docs", (c) => c.html(swaggerPage))
    .get(`${SWAGGER_ASSETS}/swagger-ui-dist/:file`, serveAsset(swaggerAssets))
    .get("/redoc", (c) => c.html(redocPage))
    .get(`${REDOC_ASSETS}/:file`, serveAsset(redocAssets));
}
