/** Server entry for Bun. */
import type { Server } from "bun";
import { boot } from "./boot.ts";

await boot(
  async (app, config) => {
    // Body limits are the app's (per route, answered as problem+json before the body is read), not the runtime's:
    // Bun's own default would refuse uploads over 128 MiB with a bare 413.
    const server = Bun.serve({ hostname: config.HOST, port: config.PORT, fetch: app.fetch, maxRequestBodySize: Number.MAX_SAFE_INTEGER });
    return { url: server.url.href, stop: () => server.stop() };
  },
  // Bun.serve hands the server to fetch as its second argument, which Hono keeps as c.env.
  (c) => (c.env as Server<undefined>).requestIP(c.req.raw)?.address,
);
