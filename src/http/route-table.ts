/**
 * What each route declares, looked up per request by the middleware that must know it before the route runs:
 * the scope its API key needs, whether the key may come in the query string, whether it takes a JSON body, and
 * the shape of its errors, its body limit. All of it is read from the routes' OpenAPI definitions, so the docs and the
 * middleware cannot disagree; and which methods a path has, for 405 answers.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, Hono } from "hono";
import type { Scope } from "../auth/key-store.ts";
import type { AppEnv } from "./env.ts";
import { MAX_BODY_BYTES, QUERY_KEY_SCHEME } from "./openapi.ts";
import { ProblemError, problemResponse } from "./problem.ts";

export type RouteInfo = {
  /** The scope an API key needs; undefined for a public route. */
  scope?: Scope;
  /** The key may come as a query parameter (an `in: query` security scheme): for clients that cannot send headers. */
  keyInQuery: boolean;
  /** The route takes a JSON body. */
  takesJson: boolean;
  /** The schema of the route's declared error responses, when they are not problem+json (OpenAI's, say). */
  errorSchema?: unknown;
  /** The route's own body limit (uploads), from its `x-max-body-bytes`; else the server's. */
  maxBodyBytes?: number;
};

type Pattern<T> = { method: string; pattern: RegExp; value: T };

export class RouteTable {
  private readonly fixed = new Map<string, RouteInfo>();
  private readonly patterns: Pattern<RouteInfo>[] = [];
  private readonly methods: Pattern<string>[] = [];

  /** Indexes the OpenAPI routes of `documented` and the methods of every route of `routers`. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any router, whatever its env
  constructor(documented: OpenAPIHono<any>, routers: Hono<any, any, any>[]) {
    for (const def of documented.openAPIRegistry.definitions) {
      if (def.type !== "route") continue;
      const route = def.route;
      const security = route.security ?? [];
      const scope = security.flatMap((s) => Object.values(s).flat())[0] as Scope | undefined;
      const errors = Object.entries(route.responses).find(([status]) => Number(status) >= 400)?.[1];
      const errorContent = errors && "content" in errors ? errors.content : undefined;
      const info: RouteInfo = {
        ...(scope ? { scope } : {}),
        keyInQuery: security.some((s) => QUERY_KEY_SCHEME in s),
        takesJson: Boolean(route.request?.body?.content?.["application/json"]),
        ...(typeof route[MAX_BODY_BYTES] === "number" ? { maxBodyBytes: route[MAX_BODY_BYTES] } : {}),
        ...(errorContent && !errorContent["application/problem+json"] ? { errorSchema: (errorContent["application/json"] as { schema?: unknown } | undefined)?.schema } : {}),
      };
      const method = route.method.toUpperCase();
      if (route.path.includes("{")) this.patterns.push({ method, pattern: pathPattern(route.path, /\\\{[^}]+\\\}/g), value: info });
      else this.fixed.set(`${method} ${route.path}`, info);
    }
    const seen = new Set<string>();
    for (const router of routers) {
      for (const { method, path } of router.routes) {
        if (method === "ALL" || seen.has(`${method} ${path}`)) continue;
        seen.add(`${method} ${path}`);
        this.methods.push({ method, pattern: pathPattern(path, /:[^/]+|\\\*/g), value: method });
      }
    }
  }

  /** The route a request is for (HEAD is answered by the GET route), or undefined for no documented route. */
  lookup(method: string, path: string): RouteInfo | undefined {
    const m = method === "HEAD" ? "GET" : method;
    return this.fixed.get(`${m} ${path}`) ?? this.patterns.find((r) => r.method === m && r.pattern.test(path))?.value;
  }

  /** The methods some route answers at `path`, as an Allow header lists them (HEAD with GET); empty for none. */
  allowed(path: string): string[] {
    const methods = new Set(this.methods.filter((r) => r.pattern.test(path)).map((r) => r.value));
    if (methods.has("GET")) methods.add("HEAD");
    return [...methods].sort();
  }

  /** The request's route, looked up once per request. */
  of(c: Context<AppEnv>): RouteInfo | undefined {
    let route = c.get("route");
    if (route === undefined) c.set("route", (route = this.lookup(c.req.method, c.req.path) ?? null));
    return route ?? undefined;
  }
}

/** A regular expression for a route path whose parameters `params` matches (in the escaped path). */
function pathPattern(path: string, params: RegExp): RegExp {
  const escaped = path.replace(/[.*+?^$()|[\]\\{}]/g, "\\$&");
  return new RegExp(`^${escaped.replace(params, "[^/]+")}$`);
}

/** The app's notFound: 405 with Allow when the path has routes for other methods, else 404; problem+json either way. */
export function notFound(routes: RouteTable) {
  return (c: Context) => {
    const allowed = routes.allowed(c.req.path);
    // A route that answers this method and found nothing (an unknown asset, say) is a plain 404.
    if (allowed.length > 0 && !allowed.includes(c.req.method)) {
      return problemResponse(
        c,
        new ProblemError(405, "Method Not Allowed", `${c.req.path} does not answer ${c.req.method}; it answers ${allowed.join(", ")}.`, {
          headers: { Allow: allowed.join(", ") },
        }),
      );
    }
    return problemResponse(c, new ProblemError(404, "Not Found", `No route for ${c.req.method} ${c.req.path}.`));
  };
}
