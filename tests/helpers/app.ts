/**
 * The one app builder of the HTTP tests: the app as boot.ts assembles it (createApp), over a fake catalog by
 * default, with or without keys; a frozen clock for the rate limiter; and request and header helpers.
 */
import type { Context } from "hono";
import { createApp } from "../../src/main/app.ts";
import { loadConfig } from "../../src/main/config.ts";
import type { KeyStore } from "../../src/auth/key-store.ts";
import type { ModelCatalog } from "../../src/engine/registry/repository.ts";
import { createLogger, type Logger } from "../../src/observability/logger.ts";
import { MemoryStore } from "../../src/ratelimit/memory-store.ts";
import type { RateLimitStore } from "../../src/ratelimit/store.ts";
import { FakeRepository } from "./fake-repository.ts";

export const SETOSA = [5.1, 3.5, 1.4, 0.2];
export const SETOSA_NAMED = { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 };
export const WINE_CLASS_0 = [14.1, 2.16, 2.3, 18, 105, 2.95, 3.32, 0.22, 2.38, 5.75, 1.25, 3.17, 1510];

/** A clock for MemoryStore that moves only when a test moves it. */
export function frozenClock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

export type TestAppOptions<R extends ModelCatalog> = {
  /** Environment for loadConfig; NODE_ENV=test and LOG_LEVEL=silent are set, as is a limit nobody hits (RATE_LIMIT_CAPACITY=1000000). */
  env?: Record<string, string>;
  /** Without keys, authentication is off. */
  keys?: KeyStore;
  /** Default: a FakeRepository over the real iris and wine manifests. */
  catalog?: R;
  logger?: Logger;
  /** Default: a MemoryStore on a frozen clock, so refills happen only when a test says so. */
  store?: RateLimitStore;
  clientAddress?: (c: Context) => string | undefined;
};

/** The app as boot.ts assembles it, with the keys, store and client address given. */
export function testApp<R extends ModelCatalog = FakeRepository>(options: TestAppOptions<R> = {}) {
  const config = loadConfig({ NODE_ENV: "test", LOG_LEVEL: "silent", RATE_LIMIT_CAPACITY: "1000000", ...options.env });
  const clock = frozenClock();
  const repository = options.catalog ?? (new FakeRepository() as unknown as R);
  const store = options.store ?? new MemoryStore({ now: clock.now });
  const app = createApp({
    config,
    catalog: repository,
    logger: options.logger ?? createLogger("silent"),
    keys: options.keys,
    rateLimitStore: store,
    clientAddress: options.clientAddress,
  });
  return { app, repository, config, clock, store };
}

export type Sendable = { method: "GET" | "POST" | "OPTIONS" | "HEAD"; path: string; body?: unknown; headers?: Record<string, string> };

/** Sends `r` to `app` (JSON body when there is one), with `headers` added. */
export function send(app: { request: (path: string, init?: RequestInit) => Response | Promise<Response> }, r: Sendable, headers: Record<string, string> = {}) {
  const init: RequestInit = { method: r.method, headers: { ...r.headers, ...headers } };
  if (r.body !== undefined) {
    init.headers = { "Content-Type": "application/json", ...init.headers };
    init.body = typeof r.body === "string" ? r.body : JSON.stringify(r.body);
  }
  return app.request(r.path, init);
}

/** The path part of a request path (what problem bodies name as `instance`). */
export const pathOf = (path: string) => new URL(path, "http://x").pathname;

export const RATE_LIMIT_HEADERS = ["ratelimit-policy", "ratelimit", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"] as const;

/** The rate-limit headers a response carries, by lower-case name. */
export function rateLimitHeadersOf(res: Response): Record<string, string> {
  return Object.fromEntries(RATE_LIMIT_HEADERS.flatMap((h) => (res.headers.has(h) ? [[h, res.headers.get(h)!]] : [])));
}

/** The comma-separated header `name` as a lower-case list. */
export function headerList(res: Response, name: string): string[] {
  return (res.headers.get(name) ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

/** Headers that differ between any two responses (ids, timings, body length) or by body format. */
const VOLATILE = new Set(["x-request-id", "x-process-time", "server-timing", "content-length", "content-type"]);

/** A response's headers minus the volatile ones, for comparing two responses. */
export function stableHeaders(res: Response): Record<string, string> {
  return Object.fromEntries([...res.headers.entries()].filter(([name]) => !VOLATILE.has(name)));
}

/** A version-4 UUID, as hono/request-id generates. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
