/**
 * Server entry for Node.js, through @hono/node-server: the same app as src/index.ts.
 * Node does not run TypeScript, so `npm run start:node` bundles this file and the session worker first.
 */
import { serve } from "@hono/node-server";
import { getConnInfo } from "@hono/node-server/conninfo";
import { boot } from "./boot.ts";

await boot((app, config) => {
  const server = serve({ fetch: app.fetch, hostname: config.HOST, port: config.PORT });
  return new Promise((resolve) => {
    server.once("listening", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : config.PORT;
      resolve({ url: `http://${config.HOST}:${port}/`, stop: () => new Promise<void>((done) => server.close(() => done())) });
    });
  });
}, (c) => getConnInfo(c).remote.address);
