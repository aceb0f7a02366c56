/**
 * API-key authentication: routes that need a scope refuse requests without a key holding it, as problem+json with
 * RFC 6750 `WWW-Authenticate` challenges. Keys are checked by {@link KeyStore.verify}, in constant time.
 */
import type { Context, MiddlewareHandler } from "hono";
import { ProblemError, problemType } from "../problem.ts";
import type { ApiKey, KeyStore, Scope } from "../../auth/key-store.ts";

/** What the middleware sets on the context: the verified key, on routes that need one. Add it to the app's Env. */
export type ApiKeyVariables = { apiKey?: ApiKey };

export type ApiKeyAuthOptions = {
  /** The keys to accept, from {@link loadKeyStore}. */
  keys: KeyStore;
  /** The scope a request needs, or undefined for a public route (no key asked for, none checked). */
  scopeFor: (c: Context) => Scope | undefined;
  /** The realm named in `WWW-Authenticate` challenges. Default "api". */
  realm?: string;
  /**
   * Where a route allows the key as a query parameter (EventSource cannot set headers): returns the key, or
   * undefined where the route does not allow it. Default: nowhere. Query strings end up in access logs and
   * browser history, so allow it only where a header is impossible.
   */
  queryParam?: (c: Context) => string | undefined;
  /**
   * Runs before a refusal (401 or 403) is thrown; if it throws, that is thrown instead. The app charges refused
   * requests to the client address's rate-limit bucket here, so a flood of wrong keys ends in 429s.
   */
  onRefusal?: (c: Context) => unknown;
};

// RFC 6750's b64token: what may follow "Bearer ". Anything else in Authorization is not ours to read.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * API-key authentication middleware for Hono.
 *
 * A client sends its key as `X-API-Key: <key>` or `Authorization: Bearer <key>` (or, where `queryParam` allows,
 * in the query string). On a route whose `scopeFor` gives a scope:
 * - no key (or a malformed Authorization header, such as Basic credentials) → 401, `WWW-Authenticate: Bearer realm="api"`;
 * - two different keys at once → 401, `error="invalid_request"`;
 * - a key that is not in the store → 401, `error="invalid_token"`;
 * - a key without the scope → 403, `error="insufficient_scope", scope="<scope>"`;
 * - otherwise the request goes on, with the key's name, scopes and rate limit at `c.get("apiKey")`.
 *
 * Refusals are thrown as {@link ProblemError}s, so the app's onError (`problemErrorHandler`) answers them as
 * problem+json. Problem details name the scope needed, never the key presented.
 *
 * @param {ApiKeyAuthOptions} options
 * @param {KeyStore} options.keys - The keys to accept.
 * @param {(c: Context) => Scope | undefined} options.scopeFor - The scope a request needs; undefined for public routes.
 * @param {string} [options.realm="api"] - The realm in `WWW-Authenticate`.
 * @param {(c: Context) => string | undefined} [options.queryParam] - The key from the query string, where a route allows it. Default: nowhere.
 * @param {(c: Context) => unknown} [options.onRefusal] - Runs before a 401/403 is thrown (to charge it to a rate limit, say). Default: nothing.
 * @returns {MiddlewareHandler} The middleware, setting `apiKey` ({@link ApiKeyVariables}).
 * @throws {TypeError} At construction, if `keys` or `scopeFor` is missing or `realm` cannot be quoted in a header.
 *
 * @example
 * ```ts
 * const app = new Hono<{ Variables: ApiKeyVariables }>()
 * app.use(
 *   apiKeyAuth({
 *     keys: loadKeyStore(config.API_KEYS_FILE),
 *     scopeFor: (c) => (c.req.path.startsWith("/v1/predict") ? "predict" : c.req.path.startsWith("/admin") ? "admin" : undefined),
 *     queryParam: (c) => (c.req.path === "/v1/generate/stream" ? c.req.query("api_key") : undefined),
 *   }),
 * )
 * app.post("/v1/predict", (c) => c.json({ caller: c.get("apiKey")?.name }))
 * ```
 */
export function apiKeyAuth(options: ApiKeyAuthOptions): MiddlewareHandler<{ Variables: ApiKeyVariables }> {
  const { keys, scopeFor, realm = "api", queryParam, onRefusal } = options ?? ({} as ApiKeyAuthOptions);
  // Mistakes in wiring fail at start-up, not on the first request.
  if (!keys || typeof keys.verify !== "function") throw new TypeError("apiKeyAuth: options.keys must be a KeyStore (see loadKeyStore)");
  if (typeof scopeFor !== "function") throw new TypeError("apiKeyAuth: options.scopeFor must be a function returning a scope or undefined");
  if (queryParam !== undefined && typeof queryParam !== "function") throw new TypeError("apiKeyAuth: options.queryParam must be a function");
  if (onRefusal !== undefined && typeof onRefusal !== "function") throw new TypeError("apiKeyAuth: options.onRefusal must be a function");
  // The realm goes inside a quoted-string; refusing quotes, backslashes and control characters beats escaping them.
  if (typeof realm !== "string" || realm === "" || /["\\\p{Cc}]/u.test(realm)) {
    throw new TypeError(`apiKeyAuth: options.realm must be a non-empty string without quotes, backslashes or control characters; got ${JSON.stringify(realm)}`);
  }

  const challenge = (params = "") => ({ "WWW-Authenticate": `Bearer realm="${realm}"${params}` });
  const howToSend = "Send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'.";

  /** Charges the refusal (onRefusal, which may throw its own answer instead), then throws it. */
  const refuse = async (c: Context, status: 401 | 403, detail: string, params = ""): Promise<never> => {
    await onRefusal?.(c);
    throw new ProblemError(status, status === 401 ? "Unauthorized" : "Forbidden", detail, {
      type: problemType(status === 401 ? "unauthorized" : "forbidden"),
      headers: challenge(params),
    });
  };

  // Not async: an accepted request costs no promise of its own, only next()'s.
  return function apiKeyAuth(c, next) {
    const scope = scopeFor(c);
    // Public routes skip the check entirely, so a stale key in a client's config cannot break health checks.
    if (scope === undefined) return next();

    const presented = presentedKey(c, queryParam);
    if (presented === undefined) return refuse(c, 401, `This route needs an API key with the '${scope}' scope. ${howToSend}`);
    // Picking one would let a proxy's key and a client's key silently stand in for each other.
    if (presented === TWO_KEYS) return refuse(c, 401, "The request carries two different API keys; send one.", `, error="invalid_request"`);

    const key = keys.verify(presented);
    if (!key) return refuse(c, 401, "The API key is not valid: it is unknown or has been revoked.", `, error="invalid_token"`);
    if (!key.scopes.includes(scope)) {
      const detail = `API key '${key.name}' lacks the '${scope}' scope this route needs; it has: ${key.scopes.join(", ")}.`;
      return refuse(c, 403, detail, `, error="insufficient_scope", scope="${scope}"`);
    }

    c.set("apiKey", key);
    return next();
  };
}

const TWO_KEYS = Symbol("two different keys");

/**
 * The key a request presents in X-API-Key, Authorization: Bearer or (where allowed) the query; undefined for
 * none, {@link TWO_KEYS} when two places hold different keys.
 */
function presentedKey(c: Context, queryParam: ApiKeyAuthOptions["queryParam"]): string | undefined | typeof TWO_KEYS {
  const header = c.req.header("x-api-key")?.trim() || undefined;
  const authorization = c.req.header("authorization");
  // A malformed Authorization header ("Basic ...", a bare "Bearer") counts as no key, as if it were absent.
  const bearer = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1];
  const query = queryParam?.(c)?.trim() || undefined;
  let found: string | undefined;
  for (const key of [header, bearer, query]) {
    if (key === undefined) continue;
    if (found !== undefined && key !== found) return TWO_KEYS;
    found = key;
  }
  return found;
}
