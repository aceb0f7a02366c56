/** Route-test helpers: JSON requests, and the problem+json and OpenAI error contracts. */
import { expect } from "bun:test";
import type { createApp } from "../../src/main/app.ts";

export type TestApp = ReturnType<typeof createApp>;

/** POSTs `body` as JSON (a string is sent as is). */
export function postJson(app: TestApp, path: string, body: unknown, headers: Record<string, string> = {}) {
  return app.request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

export type ProblemBody = {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  errors?: { path: string; message: string }[];
};

/**
 * Asserts the RFC 9457 contract of an error response: the status, Content-Type application/problem+json, and
 * a body of exactly type, title, status (= the HTTP status), detail, instance (+ errors for validation, and
 * request_id when the app assigns request ids). Returns the body, without request_id, for further checks.
 */
export async function expectProblem(res: Response, status: number, instance: string): Promise<ProblemBody> {
  const text = await res.text();
  expect({ status: res.status, body: text }).toMatchObject({ status });
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const { request_id: requestId, ...body } = JSON.parse(text) as ProblemBody & { request_id?: unknown };
  if (requestId !== undefined) expect(typeof requestId).toBe("string");
  const keys = Object.keys(body).filter((k) => k !== "errors");
  expect(keys.sort()).toEqual(["detail", "instance", "status", "title", "type"]);
  expect(body.status).toBe(status);
  expect(body.instance).toBe(instance);
  expect(typeof body.type).toBe("string");
  expect(body.title).not.toBe("");
  expect(body.detail).not.toBe("");
  if (body.errors !== undefined) {
    expect(body.errors.length).toBeGreaterThan(0);
    for (const e of body.errors) expect(Object.keys(e).sort()).toEqual(["message", "path"]);
  }
  return body;
}

export type OpenAIErrorBody = { error: { message: string; type: string; param: string | null; code: string | null } };

/** Asserts OpenAI's error shape, exactly {error: {message, type, param, code}}, as application/json; returns the error. */
export async function expectOpenAIError(res: Response, status: number, type: string): Promise<OpenAIErrorBody["error"]> {
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status });
  expect(res.headers.get("content-type")).toStartWith("application/json");
  const body = JSON.parse(text) as OpenAIErrorBody;
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(body.error.type).toBe(type);
  expect(typeof body.error.message).toBe("string");
  expect(body.error.message).not.toBe("");
  return body.error;
}

/**
 * The status line and headers of the answer to `head` followed by `body`, sent over a raw TCP connection to the
 * server at `url`: for requests fetch will not send as written (a Content-Length the body does not have, say).
 */
export async function rawExchange(url: string, head: string, body: Uint8Array = new Uint8Array(0)): Promise<string> {
  const { hostname, port } = new URL(url);
  let received = "";
  const { promise, resolve } = Promise.withResolvers<string>();
  const socket = await Bun.connect({
    hostname,
    port: Number(port),
    socket: {
      data(_socket, chunk) {
        received += new TextDecoder().decode(chunk);
        if (received.includes("\r\n\r\n")) resolve(received);
      },
      close() {
        resolve(received);
      },
    },
  });
  socket.write(head);
  socket.write(body);
  const answer = await promise;
  socket.end();
  return answer;
}
