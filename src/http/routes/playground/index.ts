/**
 * GET /: a small playground page for people (no build step, no CDN): streaming generation and the iris form.
 * GET /favicon.ico: browsers ask for it on every page, whichever page links it.
 */
import { Hono } from "hono";
import { readFileSync } from "node:fs";

/*
 * favicon.ico (a white ring on the page's blue) was drawn once with Debian's python3-pil, in this folder:
 *   python3 -c "from PIL import Image, ImageDraw
 *   im = Image.new('RGBA', (256, 256)); d = ImageDraw.Draw(im)
 *   d.rounded_rectangle((0, 0, 255, 255), 56, fill='#2f6fde'); d.ellipse((56, 56, 199, 199), outline='white', width=36)
 *   im.save('favicon.ico', sizes=[(16, 16), (32, 32), (48, 48)])"
 */
const ICON_HEADERS = { "Content-Type": "image/x-icon", "Cache-Control": "public, max-age=86400" };

export function playgroundRouter() {
  // Read beside this module: the Node bundle has them copied beside dist/node.js (see build:node).
  const page = readFileSync(new URL("./playground.html", import.meta.url), "utf8");
  const icon = readFileSync(new URL("./favicon.ico", import.meta.url));
  return new Hono().get("/", (c) => c.html(page)).get("/favicon.ico", (c) => c.body(icon, 200, ICON_HEADERS));
}
