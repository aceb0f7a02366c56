/** GET /: a small playground page for people (no build step, no CDN): streaming generation and the iris form. */
import { Hono } from "hono";
import { readFileSync } from "node:fs";

export function playgroundRouter() {
  const page = readFileSync(new URL("./playground.html", import.meta.url), "utf8");
  return new Hono().get("/", (c) => c.html(page));
}
