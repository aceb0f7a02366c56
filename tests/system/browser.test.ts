/**
 * A real browser against the real server: Debian's chromium (/usr/bin/chromium, never a downloaded one) driven
 * by playwright-core. EventSource on /v1/generate, the playground page at GET / (generation and the iris form,
 * and the server's reasons when it refuses them; the image panel), that the page loads nothing from elsewhere, the page's API-key
 * field when the server has keys, that Swagger UI at /docs and ReDoc at /redoc render from this server alone,
 * and the favicon.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { MODELS_DIR } from "../helpers/fake-repository.ts";
import { startTextServer, textModelsDir } from "../helpers/generation.ts";
import { digitPng, IMAGES_DIR, PDF } from "../helpers/images.ts";
import { keysFile } from "../helpers/keys.ts";
import { startServer, type RunningServer } from "../helpers/server.ts";

// What the callbacks below use in the page; the project compiles without the DOM library.
declare const document: { getElementById(id: string): { textContent: string | null; className: string; querySelector(selector: string): unknown; checkValidity(): boolean } | null };
type PageEvent = { data: string };
declare const EventSource: new (url: string) => { addEventListener(type: string, listener: (event: PageEvent) => void): void; close(): void };
declare const DataTransfer: new () => { items: { add(file: File): void } };

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
export const SCREENSHOT = "/tmp/playground.png";
// A browser on two shared cores is slow; these bound each test, they do not measure it.
const TEST_TIMEOUT = 60_000;
const HOOK_TIMEOUT = 60_000;

let browser: Browser;
/** The server with authentication off, shared by the playground and Swagger UI tests. */
let server: RunningServer;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)`);
  // Playwright gives each launch a fresh temporary profile of its own.
  // iris and tiny-lm as for every text test, and the digits image model for the image panel.
  const models = textModelsDir({ digits: join(MODELS_DIR, "digits") });
  [browser, server] = await Promise.all([chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true }), startServer({ MODELS_DIR: models })]);
}, HOOK_TIMEOUT);
afterAll(async () => {
  await Promise.all([browser?.close(), server?.stop("SIGKILL")]);
}, HOOK_TIMEOUT);

type Generation = { model: string; text: string; finish_reason: string; usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } };

async function generateJson(server: RunningServer, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Generation> {
  const res = await fetch(`${server.url}/v1/generate`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return (await res.json()) as Generation;
}

/** A new page on a new context that records the URL of every request it makes. */
async function openPage(server: RunningServer): Promise<{ page: Page; requests: string[]; close: () => Promise<void> }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  const requests: string[] = [];
  page.on("request", (request) => requests.push(request.url()));
  await page.goto(`${server.url}/`);
  // The model list is filled from /v1/models once the page has loaded.
  await page.waitForSelector("#text-model option[value='tiny-lm']", { state: "attached" });
  return { page, requests, close: () => context.close() };
}

/** Fills the generation form, clicks Generate and waits for the status to leave "generating...". */
async function generateInPage(page: Page, form: { prompt: string; maxTokens: number; seed: number }): Promise<{ status: string; text: string }> {
  await page.fill("#prompt", form.prompt);
  await page.fill("#max-tokens", String(form.maxTokens));
  await page.fill("#seed", String(form.seed));
  // An invalid field would make the browser refuse to submit, and nothing would happen.
  expect(await page.evaluate(() => document.getElementById("generate-form")!.checkValidity())).toBe(true);
  await page.click("#generate");
  await page.waitForFunction(() => {
    const status = document.getElementById("gen-status")!.textContent ?? "";
    return status.startsWith("done") || status.startsWith("error") || status.startsWith("stopped");
  });
  return {
    status: (await page.textContent("#gen-status")) ?? "",
    text: (await page.locator("#generated").textContent()) ?? "",
  };
}

/** Fills the iris form, clicks Predict and returns what the page then shows. */
async function predictInPage(page: Page, row: [number, number, number, number]): Promise<{ ok: boolean; text: string }> {
  const names = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
  for (const [i, name] of names.entries()) await page.fill(`#${name}`, String(row[i]));
  await page.click("#predict");
  await page.waitForFunction(() => {
    const out = document.getElementById("prediction")!;
    return out.textContent !== "..." && out.textContent !== "" && (out.querySelector("#predicted-label") !== null || out.className.includes("error"));
  });
  const ok = (await page.locator("#predicted-label").count()) === 1;
  return { ok, text: ok ? ((await page.textContent("#predicted-label")) ?? "") : ((await page.textContent("#prediction")) ?? "") };
}

/** The URLs of the requests `requests` recorded for `pathname`. */
const requestsTo = (requests: string[], pathname: string) => requests.filter((u) => new URL(u).pathname === pathname);

/** What the server answers to a GET of `url` (on `server`) that it refuses: the status and the problem's detail. */
async function refusalOf(server: RunningServer, url: string): Promise<{ status: number; detail: string }> {
  const { pathname, search } = new URL(url);
  const res = await fetch(`${server.url}${pathname}${search}`);
  expect(res.headers.get("content-type")).toStartWith("application/problem+json");
  const problem = (await res.json()) as { detail: string };
  return { status: res.status, detail: problem.detail };
}

// Over tiny-lm's 64-token context the page's own default (60 tokens) is too long for most prompts; tests set it.
const FORM = { prompt: "And God said", maxTokens: 30, seed: 1234 };
// The page's defaults for the rest: temperature 0.8, top p 0.95, top k 40.
const SAME_AS_FORM = { model: "tiny-lm", prompt: FORM.prompt, max_tokens: FORM.maxTokens, temperature: 0.8, top_p: 0.95, top_k: 40, seed: FORM.seed };

describe("the browser, authentication off", () => {
  test("an EventSource on /v1/generate receives token events, then a done event whose completion_tokens is their number", async () => {
    const { page, close } = await openPage(server);
    try {
      const result = await page.evaluate(
        (query) =>
          new Promise<{ tokens: { text: string; index: number }[]; done: { finish_reason: string; usage: { completion_tokens: number } } }>((resolve, reject) => {
            const tokens: { text: string; index: number }[] = [];
            const source = new EventSource(`/v1/generate?${query}`);
            source.addEventListener("token", (e) => tokens.push(JSON.parse(e.data)));
            source.addEventListener("done", (e) => {
              source.close();
              resolve({ tokens, done: JSON.parse(e.data) });
            });
            source.addEventListener("error", () => {
              source.close();
              reject(new Error(`EventSource failed after ${tokens.length} tokens`));
            });
          }),
        new URLSearchParams({ prompt: "In the beginning", max_tokens: "20", temperature: "0" }).toString(),
      );
      expect(result.tokens.length).toBeGreaterThan(0);
      expect(result.done.finish_reason).toBe("length");
      expect(result.done.usage.completion_tokens).toBe(result.tokens.length);
      expect(result.tokens.map((t) => t.index)).toEqual(result.tokens.map((_, i) => i));
      const reference = await generateJson(server, { prompt: "In the beginning", max_tokens: 20, temperature: 0 });
      expect(result.tokens.map((t) => t.text).join("")).toBe(reference.text);
    } finally {
      await close();
    }
  }, TEST_TIMEOUT);

  test("the playground: Generate streams the same text as POST /v1/generate for the same seed and parameters; Predict shows setosa", async () => {
    const { page, requests, close } = await openPage(server);
    try {
      const generated = await generateInPage(page, FORM);
      const reference = await generateJson(server, SAME_AS_FORM);
      expect(generated.status).toMatch(new RegExp(`^done \\(${reference.finish_reason}\\): ${reference.usage.completion_tokens} tokens in [\\d.]+ s$`));
      expect(generated.text).not.toBe("");
      expect(generated.text).toBe(reference.text);
      // The prompt is shown before the generated text.
      expect(await page.textContent("#output")).toBe(FORM.prompt + generated.text);

      const predicted = await predictInPage(page, [5.1, 3.5, 1.4, 0.2]);
      expect(predicted).toEqual({ ok: true, text: "setosa" });
      expect(await page.textContent("#prediction")).toMatch(/^setosa \([\d.]+% confident\)/);
      await page.screenshot({ path: SCREENSHOT, fullPage: true });

      // Nothing came from anywhere but this server: no CDN, fonts or trackers.
      const origin = new URL(server.url).origin;
      expect(requests.length).toBeGreaterThanOrEqual(4); // the page, /v1/models, /v1/generate, /v2/predict
      expect(requests.filter((u) => new URL(u).origin !== origin)).toEqual([]);
      expect(requests.map((u) => new URL(u).pathname)).toEqual(expect.arrayContaining(["/", "/v1/models", "/v1/generate", "/v2/predict"]));
    } finally {
      await close();
    }
  }, TEST_TIMEOUT);

  // A default that breaks its own field's constraints (top p 0.95 with min 0.01, step 0.05 once did) makes the
  // browser refuse to submit: clicking Generate would do nothing at all.
  test("Generate works with the page's default sampling values (the form is valid as served)", async () => {
    const { page, close } = await openPage(server);
    try {
      expect(await page.evaluate(() => document.getElementById("generate-form")!.checkValidity())).toBe(true);
      await page.fill("#max-tokens", "20");
      await page.click("#generate");
      await page.waitForFunction(() => (document.getElementById("gen-status")!.textContent ?? "").startsWith("done"), undefined, { timeout: 10_000 });
    } finally {
      await close();
    }
  }, TEST_TIMEOUT);

  // EventSource cannot read an error response: the page asks again with fetch to show why.
  test("a generation the server refuses (over the context) shows the 422's detail in the status line", async () => {
    const { page, requests, close } = await openPage(server);
    try {
      const generated = await generateInPage(page, { ...FORM, maxTokens: 64 });
      const refused = await refusalOf(server, requestsTo(requests, "/v1/generate")[0]!);
      expect(refused.status).toBe(422);
      expect(refused.detail).toContain("context");
      expect(generated.status).toBe(`error (422): ${refused.detail}`);
      expect(generated.text).toBe("");
      expect(await page.getAttribute("#gen-status", "class")).toContain("error");
    } finally {
      await close();
    }
  }, TEST_TIMEOUT);

  test("empty sampling fields are left out of the query, and the server's defaults apply", async () => {
    const { page, requests, close } = await openPage(server);
    try {
      for (const id of ["#temperature", "#top-p", "#top-k", "#seed"]) await page.fill(id, "");
      await page.fill("#max-tokens", "10");
      await page.click("#generate");
      await page.waitForFunction(() => (document.getElementById("gen-status")!.textContent ?? "") !== "generating...");
      expect(await page.textContent("#gen-status")).toStartWith("done");
      const query = new URL(requestsTo(requests, "/v1/generate")[0]!).searchParams;
      expect([...query.keys()].sort()).toEqual(["max_tokens", "model", "prompt"]);
    } finally {
      await close();
    }
  }, TEST_TIMEOUT);

  test("an empty iris field is named on the page and nothing is sent", async () => {
    const { page, requests, close } = await openPage(server);
    try {
      await page.fill("#sepal_width", "");
      await page.click("#predict");
      await page.waitForFunction(() => (document.getElementById("prediction")!.textContent ?? "") !== "");
      expect(await page.textContent("#prediction")).toBe("sepal_width is empty");
      expect(await page.getAttribute("#prediction", "class")).toContain("error");
      expect(requestsTo(requests, "/v2/predict")).toEqual([]);
    } finally {
      await close();
    }
  }, TEST_TIMEOUT);

  test("the image panel: a digit PNG set on the file input shows its label and the top-k bars, as the API answers", async () => {
    const { page, requests, close } = await openPage(server);
    try {
      await page.waitForSelector("#image-model option[value='digits']", { state: "attached" });
      await page.setInputFiles("#image-file", join(IMAGES_DIR, "digit-7.png"));
      await page.waitForSelector("#image-label");
      expect(await page.textContent("#image-label")).toBe("7");
      const form = new FormData();
      form.append("file", new Blob([await digitPng(7)]), "digit-7.png");
      const reference = (await (await fetch(`${server.url}/v1/models/digits/classify`, { method: "POST", body: form })).json()) as { top_k: { label: string; confidence: number }[] };
      const bars = page.locator("#image-bars .bar-row");
      expect(await bars.count()).toBe(5);
      const shown = await bars.evaluateAll((rows) =>
        rows.map((row) => {
          const cells = row as unknown as { querySelector(s: string): { textContent: string; style: { width: string } } };
          // The browser writes a width of 0.0% back as 0%: compared as a number.
          return { label: cells.querySelector(".bar-label").textContent, width: Number.parseFloat(cells.querySelector(".bar > span").style.width), value: cells.querySelector(".bar-value").textContent };
        }),
      );
      expect(shown).toEqual(reference.top_k.map(({ label, confidence }) => ({ label, width: Number((100 * confidence).toFixed(1)), value: `${(100 * confidence).toFixed(1)}%` })));
      expect(await page.isVisible("#image-preview")).toBe(true);
      expect(requestsTo(requests, "/v1/models/digits/classify")).toHaveLength(1);

      // Dropped on the zone: the same path.
      const bytes = [...(await digitPng(2))];
      const dropped = await page.evaluateHandle((data) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(data)], "digit-2.png", { type: "image/png" }));
        return transfer;
      }, bytes);
      await page.dispatchEvent("#drop-zone", "drop", { dataTransfer: dropped });
      await page.waitForFunction(() => document.getElementById("image-label")?.textContent === "2");

      // A PDF under an image's name: the server's 415, shown on the page.
      await page.setInputFiles("#image-file", { name: "scan.png", mimeType: "image/png", buffer: PDF });
      await page.waitForFunction(() => (document.getElementById("image-output")!.className ?? "").includes("error"));
      expect(await page.textContent("#image-output")).toStartWith("error (415): file 'scan.png' is a PDF document");
    } finally {
      await close();
    }
  }, TEST_TIMEOUT);

  test("GET /favicon.ico is an icon, and the playground links it", async () => {
    const res = await fetch(`${server.url}/favicon.ico`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("image/");
    // An ICO file's header: reserved 0, type 1 (icon), then its number of images.
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect([...bytes.subarray(0, 4)]).toEqual([0, 0, 1, 0]);
    const page = await fetch(`${server.url}/`).then((r) => r.text());
    expect(page).toContain('<link rel="icon" href="/favicon.ico">');
  }, TEST_TIMEOUT);
});

describe("Swagger UI at /docs", () => {
  test("renders the API from /doc with only this server's assets (it works with no network)", async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(20_000);
      const requests: string[] = [];
      page.on("request", (request) => requests.push(request.url()));
      await page.goto(`${server.url}/docs`);
      await page.waitForSelector(".swagger-ui .info .title");
      expect(await page.textContent(".swagger-ui .info .title")).toContain("ONNX model server");
      // Operations are listed, and the Authorize button is there for the API-key schemes.
      await page.waitForSelector(".opblock-summary-path[data-path='/v1/predict']");
      expect(await page.locator(".opblock").count()).toBeGreaterThan(10);
      expect(await page.locator(".btn.authorize").count()).toBe(1);
      const origin = new URL(server.url).origin;
      expect(requests.filter((u) => !u.startsWith("data:") && new URL(u).origin !== origin)).toEqual([]);
      expect(requests.map((u) => new URL(u).pathname)).toEqual(expect.arrayContaining(["/docs", "/doc"]));
    } finally {
      await context.close();
    }
  }, TEST_TIMEOUT);
});

describe("ReDoc at /redoc", () => {
  test("renders the API from /doc with only this server's assets (it works with no network)", async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(20_000);
      const requests: string[] = [];
      const errors: string[] = [];
      page.on("request", (request) => requests.push(request.url()));
      page.on("pageerror", (error) => errors.push(error.message));
      await page.goto(`${server.url}/redoc`);
      await page.waitForSelector("h1:has-text('ONNX model server')");
      // An operation's own section, not only its entry in the side menu.
      await page.waitForSelector("h2:has-text('Classify one row with any tabular model')");
      expect(errors).toEqual([]);
      const origin = new URL(server.url).origin;
      expect(requests.filter((u) => !u.startsWith("data:") && !u.startsWith("blob:") && new URL(u).origin !== origin)).toEqual([]);
      expect(requests.map((u) => new URL(u).pathname)).toEqual(expect.arrayContaining(["/redoc", "/redoc/assets/redoc.standalone.js", "/doc"]));
    } finally {
      await context.close();
    }
  }, TEST_TIMEOUT);
});

describe("the browser, authentication on: the page's API key field", () => {
  let server: RunningServer;
  let key: string;
  beforeAll(async () => {
    const written = keysFile([{ name: "browser", scopes: ["generate", "predict"] }]);
    key = written.secret.browser;
    server = await startTextServer({ API_KEYS_FILE: written.path });
  }, HOOK_TIMEOUT);
  afterAll(async () => {
    await server?.stop("SIGKILL");
  }, HOOK_TIMEOUT);

  test("without a key, generation and Predict both show the 401's detail", async () => {
    const { page, requests, close } = await openPage(server);
    try {
      const generated = await generateInPage(page, FORM);
      const refused = await refusalOf(server, requestsTo(requests, "/v1/generate")[0]!);
      expect(refused.status).toBe(401);
      expect(refused.detail).toContain("API key");
      expect(generated.status).toBe(`error (401): ${refused.detail}`);
      expect(generated.text).toBe("");
      const predicted = await predictInPage(page, [5.1, 3.5, 1.4, 0.2]);
      expect(predicted.ok).toBe(false);
      expect(predicted.text).toContain("API key");
      expect(requests.filter((u) => new URL(u).origin !== new URL(server.url).origin)).toEqual([]);
    } finally {
      await close();
    }
  }, TEST_TIMEOUT);

  test("with the key in the field, generation matches POST /v1/generate and Predict shows setosa", async () => {
    const { page, close } = await openPage(server);
    try {
      await page.fill("#api-key", key);
      const generated = await generateInPage(page, FORM);
      expect(generated.status).toStartWith("done");
      expect(generated.text).not.toBe("");
      expect(generated.text).toBe((await generateJson(server, SAME_AS_FORM, { "X-API-Key": key })).text);
      expect(await predictInPage(page, [5.1, 3.5, 1.4, 0.2])).toEqual({ ok: true, text: "setosa" });
    } finally {
      await close();
    }
  }, TEST_TIMEOUT);
});
