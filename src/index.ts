/** Server entry for Bun. */
import { getConnInfo } from "hono/bun";
import { boot } from "./boot.ts";

await boot(
  async (app, config) => {
    const server = Bun.serve({ hostname: config.HOST, port: config.PORT, fetch: app.fetch });
    return { url: server.url.href, stop: () => server.stop() };
  },
  (c) => getConnInfo(c).remote.address,
);
