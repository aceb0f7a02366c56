/** Server entry for Bun. */
import type { Server } from "bun";
import { boot } from "./boot.ts";

await boot(
  async (app, config) => {
    const server = Bun.serve({ hostname: config.HOST, port: config.PORT, fetch: app.fetch });
    return { url: server.url.href, stop: () => server.stop() };
  },
  // Bun.serve hands the server to fetch as its second argument, which Hono keeps as c.env.
  (c) => (c.env as Server<undefined>).requestIP(c.req.raw)?.address,
);
