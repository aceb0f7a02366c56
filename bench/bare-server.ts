/** The ceiling: a bare Bun.serve answering every request with a constant JSON body of a prediction's size. */
const body = JSON.stringify({ model: "iris", version: "1.0.0", class: 0, label: "setosa", probabilities: [0.997442364692688, 0.002557652536779642, 1.2015410368049206e-13] });
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  fetch: () => new Response(body, { headers: { "Content-Type": "application/json" } }),
});
console.log(JSON.stringify({ msg: "models loaded", url: server.url.href }));
