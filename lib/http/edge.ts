// The edge every answer of the gateway passes: the Host check, request ids, CORS (preflights too), the JSON body
// rules, the access-log line with its metric, and the one error renderer. The Hono routes (lib/http/app.ts, as
// middlewares) and the two POST routes served before the router (lib/http/completions.ts, responses.ts) call the
// same functions, so every route answers alike.
import { HTTPException } from "hono/http-exception";
import type { z } from "zod";
import { ApiError, toApiError } from "../errors.ts";
import { readBody } from "./body.ts";
import { invalidRequest } from "./errors.ts";
import { isValidHost } from "./head.ts";
import type { Logger, RequestLine } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import type { IncomingRequest } from "./request.ts";

export interface EdgeOptions {
  /** `*`, or a comma-separated list of allowed origins (CORS_ORIGIN). */
  corsOrigin: string;
  /** The response headers a browser script may read (CORS `expose-headers`). */
  exposeHeaders: readonly string[];
  logger: Logger;
  metrics?: Metrics;
  /** A fresh random id. */
  id: () => string;
}

export interface Edge {
  /** The request id: the client's `x-request-id` when it is sane, else a fresh one. */
  requestId(given: string | null | undefined): string;
  /** CORS headers of a response that is not a preflight's. */
  cors(origin: string | null | undefined): Record<string, string>;
  /** The answer to a CORS preflight (any OPTIONS request): 204 with what the browser asked for allowed. */
  preflight(req: Request): Response;
  /**
   * The 400 for a Host header that is not host[:port], or null. Runtimes build the request's URL from the Host
   * (Deno: `Host: x/metrics?` would route `GET /ping` to /metrics), so a bad one never reaches a route; the
   * project's own server refuses it before (lib/http/head.ts), with the same grammar.
   */
  badHost(req: IncomingRequest): Response | null;
  /** Records a finished request: the access-log line and the metrics count, under `route` (a route pattern). */
  record(route: string, line: RequestLine): void;
  /** The one error renderer: status, headers and OpenAI body of anything thrown. */
  render(err: unknown, method: string, path: string): { error: ApiError; headers: Record<string, string> };
}

/** What a preflight allows: the methods the server serves (lib/http/head.ts), for a day. */
const ALLOW_METHODS = "GET,HEAD,PUT,POST,DELETE,PATCH";
const PREFLIGHT_MAX_AGE = "86400";
const REQUEST_ID = /^[\w.:-]{1,64}$/;

export function createEdge(options: EdgeOptions): Edge {
  const origins = options.corsOrigin === "*" ? "*" : options.corsOrigin.split(",").map((s) => s.trim());
  const expose = options.exposeHeaders.join(",");
  const cors = (origin: string | null | undefined): Record<string, string> => {
    if (origins === "*") return { "access-control-allow-origin": "*", "access-control-expose-headers": expose };
    // With a list of origins the answer depends on the Origin header, so caches must key on it.
    const h: Record<string, string> = { "access-control-expose-headers": expose, vary: "Origin" };
    if (origin && origins.includes(origin)) h["access-control-allow-origin"] = origin;
    return h;
  };
  const edge: Edge = {
    requestId: (given) => (given && REQUEST_ID.test(given) ? given : `req_${options.id()}`),
    cors,
    preflight(req) {
      const headers = new Headers(cors(req.headers.get("origin")));
      headers.set("access-control-max-age", PREFLIGHT_MAX_AGE);
      headers.set("access-control-allow-methods", ALLOW_METHODS);
      const asked = req.headers.get("access-control-request-headers");
      if (asked) {
        headers.set("access-control-allow-headers", asked.split(",").map((h) => h.trim()).join(","));
        headers.append("vary", "Access-Control-Request-Headers");
      }
      return new Response(null, { status: 204, headers });
    },
    badHost(req) {
      const host = req.headers.get("host");
      if (host === null || isValidHost(host)) return null;
      const id = edge.requestId(req.headers.get("x-request-id"));
      const error = new ApiError(400, "Invalid Host header: expected host[:port]", { code: "invalid_request" });
      // Logged without the path: the runtime built the URL from that Host.
      edge.record("unmatched", { method: req.method, path: "-", status: 400, ms: 0, id, code: error.code });
      const headers = {
        "content-type": "application/json",
        "x-request-id": id,
        ...cors(req.headers.get("origin")),
        ...error.headers(),
      };
      return new Response(JSON.stringify(error.toJSON()), { status: 400, headers });
    },
    record(route, line) {
      options.metrics?.request(route, line.status);
      options.logger.request(line);
    },
    render(err, method, path) {
      const error = err instanceof ApiError
        ? err
        : err instanceof HTTPException
        ? new ApiError(err.status, err.message || "Invalid request", { code: "invalid_request" })
        : toApiError(err);
      if (error.status >= 500 && !(err instanceof ApiError)) {
        options.logger.error(`unhandled ${err instanceof Error ? err.name : typeof err} on ${method} ${path}`);
      }
      return { error, headers: error.headers() };
    },
  };
  return edge;
}

/** Whether a request is a POST to `path` (string tests: no URL object on the hot path). */
export function isPostTo(req: IncomingRequest, path: string): boolean {
  if (req.method !== "POST") return false;
  const url = req.url;
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return false;
  const q = url.indexOf("?", start);
  const end = q < 0 ? url.length : q;
  return end - start === path.length && url.startsWith(path, start);
}

/** A whole body's text (a decoder without a stream keeps no state between calls: one serves every request). */
const utf8 = new TextDecoder();

// The content types zod-openapi accepts for a JSON body (anything else is a 415), and the one Hono parses.
const JSON_REQUEST = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;
const JSON_MEDIA = /^application\/([\w.-]+\+)?json$/i;

/**
 * Reads and validates a JSON request body as the OpenAPI routes declare it (zod-openapi's rules, so the routes
 * served before the router answer as the routed ones do): 415 for another media type, 413 past `max` bytes, 400
 * for malformed JSON or a body the schema refuses.
 */
export async function parseRequest<S extends z.ZodType>(
  req: IncomingRequest,
  max: number,
  schema: S,
): Promise<z.output<S>> {
  const type = req.headers.get("content-type");
  if (type ? !JSON_REQUEST.test(type) : req.body !== null && req.headers.get("content-length") !== "0") {
    throw new ApiError(415, "Unsupported Media Type", { code: "invalid_request" });
  }
  const text = utf8.decode(await readBody(req, max));
  let value: unknown = {};
  if (type && JSON_MEDIA.test(type.split(";")[0]!.trim())) {
    try {
      value = JSON.parse(text);
    } catch {
      throw new ApiError(400, "Malformed JSON in request body", { code: "invalid_request" });
    }
  }
  const result = schema.safeParse(value);
  if (!result.success) throw invalidRequest(result.error.issues);
  return result.data;
}
