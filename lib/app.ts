// createApp(deps): the HTTP surface — routes, CORS, request ids, logging and the one error renderer.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { routePath } from "hono/route";
import type { ChatDeps } from "./chat.ts";
import { CHAT_PATH, completionsHandler, type Edge, isCompletionsRequest, MODEL } from "./completions.ts";
import { type EmohaaClient, UpstreamError } from "./emohaa.ts";
import { bearerScheme, chatRequestExamples, documentConfig, errorResponses, streamExample } from "./apidoc.ts";
import { docsRoutes } from "./docs.ts";
import { playgroundRoutes } from "./ui.ts";
import { withDeadline } from "./deadline.ts";
import { ApiError, invalidRequest, toApiError } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import {
  ChatRequestSchema,
  ChunkSchema,
  CompletionSchema,
  ModelListSchema,
  TokenCheckRequestSchema,
  TokenCheckResponseSchema,
  TokenStatusSchema,
} from "./openai.ts";
import type { Auth } from "./auth.ts";
import type { TokenPool } from "./pool.ts";
import { isUsableToken } from "./tokens.ts";
import type { Tokenizer } from "./translate.ts";

export interface AppDeps {
  chat: ChatDeps;
  auth: Auth;
  pool: TokenPool;
  client: EmohaaClient;
  logger: Logger;
  tokenizer: () => Promise<Tokenizer>;
  promptMaxBytes: number;
  keepAliveMs: number;
  corsOrigin: string;
  /** Request bodies over this size are refused with 413 (default 1 MiB). */
  maxBodyBytes?: number;
  /** Served at `/metrics` when given. */
  metrics?: Metrics;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** A fresh random id (request ids, completion ids). */
  id: () => string;
  /** A page to serve at `/` instead of the built-in playground. */
  homePage?: () => Response | Promise<Response>;
}

type Env = {
  Variables: {
    requestId: string;
    /** The error code of a failed request, for the access log. */
    errorCode?: string | null;
  };
};

const chatRoute = createRoute({
  method: "post",
  path: CHAT_PATH,
  tags: ["Chat"],
  summary: "Create a chat completion (OpenAI-compatible)",
  operationId: "createChatCompletion",
  description:
    "Sends the conversation to Emohaa as one prompt and answers like OpenAI. With `stream: true` the answer is a " +
    "`text/event-stream` of `ChatCompletionChunk` frames ending with `data: [DONE]`. A client that disconnects cancels " +
    "the upstream request; the Emohaa conversation is deleted in every case.",
  security: [{ bearer: [] }],
  request: { body: { required: true, content: { "application/json": { schema: ChatRequestSchema, examples: chatRequestExamples } } } },
  responses: {
    200: {
      description: "The completion as JSON, or with `stream: true` an event stream: one `data:` line of JSON per chunk",
      content: {
        "application/json": { schema: CompletionSchema },
        "text/event-stream": { schema: ChunkSchema, examples: { stream: { summary: "A streamed reply, as sent on the wire", value: streamExample } } },
      },
    },
    ...errorResponses(400, 401, 429, 500, 502, 504),
  },
});

const tokenCheckRoute = createRoute({
  method: "post",
  path: "/token/check",
  tags: ["Tokens"],
  summary: "Check whether an Emohaa token is alive",
  operationId: "checkToken",
  description: "Upstream errors and timeouts answer `live: false`. Do not call it often (the original advised at most every 10 minutes).",
  request: { body: { required: true, content: { "application/json": { schema: TokenCheckRequestSchema } } } },
  responses: {
    200: { description: "Whether the token is alive", content: { "application/json": { schema: TokenCheckResponseSchema } } },
    ...errorResponses(400),
  },
});

const modelsRoute = createRoute({
  method: "get",
  path: "/v1/models",
  tags: ["Models"],
  summary: "List the models this server serves",
  operationId: "listModels",
  responses: { 200: { description: "The model list", content: { "application/json": { schema: ModelListSchema } } } },
});

const pingRoute = createRoute({
  method: "get",
  path: "/ping",
  tags: ["Health"],
  summary: "Liveness check",
  operationId: "ping",
  responses: { 200: { description: "Always `pong`", content: { "text/plain": { schema: z.string().openapi({ example: "pong" }) } } } },
});

const metricsRoute = createRoute({
  method: "get",
  path: "/metrics",
  tags: ["Health"],
  summary: "Prometheus metrics",
  operationId: "metrics",
  description: "Requests by route and status, streams in flight, upstream time to first piece, open conversations, token pool states. Counts only.",
  responses: { 200: { description: "Prometheus text format 0.0.4", content: { "text/plain": { schema: z.string() } } } },
});

const tokenStatusRoute = createRoute({
  method: "get",
  path: "/v1/tokens/status",
  tags: ["Tokens"],
  summary: "Health of the token pool",
  operationId: "tokenStatus",
  description:
    "With server-side tokens (EMOHAA_TOKENS), lists the pool's tokens and needs a gateway key. Otherwise lists the tokens of the " +
    "caller's own bearer. Tokens are shown only as a masked label derived from their SHA-256.",
  security: [{ bearer: [] }],
  responses: {
    200: { description: "Token states", content: { "application/json": { schema: TokenStatusSchema } } },
    ...errorResponses(401),
  },
});

/** Builds the gateway app around its dependencies; nothing here reads the environment or a runtime global. */
export function createApp(deps: AppDeps): OpenAPIHono<Env> {
  const app = new OpenAPIHono<Env>({
    defaultHook: (result) => {
      if (!result.success) throw invalidRequest(result.error.issues);
    },
  });

  const edge = createEdge(deps);

  app.use("*", async function requestId(c, next) {
    const id = edge.requestId(c.req.header("x-request-id"));
    c.set("requestId", id);
    c.header("x-request-id", id);
    await next();
  });

  app.use("*", async function accessLog(c, next) {
    const start = deps.now();
    await next();
    // The last matched route's pattern (not the raw path) keeps the metrics' label set bounded.
    const last = routePath(c, -1);
    const route = last === "/*" || last === "*" ? "unmatched" : last;
    edge.record(route, { method: c.req.method, path: c.req.path, status: c.res.status, ms: deps.now() - start, id: c.get("requestId"), code: c.get("errorCode") ?? null });
  });

  app.use(
    "*",
    cors({
      origin: corsOrigins(deps.corsOrigin),
      exposeHeaders: EXPOSED_HEADERS,
      maxAge: 86400,
    }),
  );

  const maxBody = deps.maxBodyBytes ?? 1024 * 1024;
  app.use(
    "*",
    bodyLimit({
      maxSize: maxBody,
      onError: () => {
        throw new ApiError(413, `Request body is larger than ${maxBody} bytes`, { code: "request_too_large" });
      },
    }),
  );

  app.onError((err, c) => {
    const { error, headers } = edge.render(err, c.req.method, c.req.path);
    for (const [k, v] of Object.entries(headers)) c.header(k, v);
    c.set("errorCode", error.code);
    // 499 is nginx's "client closed request": nobody reads it, but it logs honestly.
    return c.json(error.toJSON(), error.status as 400);
  });

  app.notFound((c) => {
    const e = new ApiError(404, `No route for ${c.req.method} ${c.req.path}`, { code: "not_found" });
    return c.json(e.toJSON(), 404);
  });

  // The chat route is served by lib/completions.ts before the router (see there why); it is declared here for
  // the OpenAPI document.
  app.openAPIRegistry.registerPath(chatRoute);

  app.openapi(tokenCheckRoute, async (c) => {
    const { token } = c.req.valid("json");
    let live = false;
    // A token that cannot travel in a header is not alive, and never reaches the upstream.
    if (isUsableToken(token)) {
      try {
        await withDeadline(deps.chat.timeouts.createMs, "token check", (signal) => deps.client.listConversations(token, signal));
        live = true;
      } catch (err) {
        live = false;
        if (err instanceof UpstreamError) deps.pool.report(token, err.kind);
      }
      // The check feeds the pool's health state like any request.
      if (live) deps.pool.report(token, "ok");
    }
    return c.json({ live }, 200);
  });

  app.openapi(modelsRoute, (c) =>
    c.json({ object: "list" as const, data: [{ id: MODEL, object: "model" as const, created: 1710000000, owned_by: "emohaa-free-api" }] }, 200),
  );

  app.openapi(pingRoute, (c) => c.text("pong", 200));

  if (deps.metrics) {
    const metrics = deps.metrics;
    app.openapi(metricsRoute, (c) => {
      const text = metrics.render({
        conversationsOpen: deps.chat.conversations.open,
        deletionsFailed: deps.chat.conversations.deleteFailures,
        pool: { ...deps.pool.counts(), waiting: deps.pool.waiting },
      });
      return c.text(text, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
    });
  }

  app.openapi(tokenStatusRoute, (c) => {
    const header = c.req.header("authorization");
    // Server-side mode: the pool's own tokens, behind a gateway key. Client mode: only the caller's own tokens.
    const tokens = deps.auth.tokensFor(header);
    return c.json({ mode: deps.auth.serverSide ? ("server" as const) : ("client" as const), waiting: deps.pool.waiting, tokens: deps.pool.status(tokens) }, 200);
  });

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", bearerScheme);

  app.doc31("/openapi.json", documentConfig);

  // Swagger UI at /docs and the playground at / (unless the caller brings its own home page); all files are embedded.
  app.route("/", docsRoutes());
  if (deps.homePage) app.get("/", () => deps.homePage!());
  app.route("/", playgroundRoutes());

  // The hot path first: chat completions skip the router (lib/completions.ts); `app.request` in tests goes here too.
  const completions = completionsHandler({ ...deps, maxBodyBytes: maxBody }, edge);
  const routed = app.fetch;
  app.fetch = (req, ...rest) => (isCompletionsRequest(req) ? completions(req) : routed(req, ...rest));
  return app;
}

const EXPOSED_HEADERS = ["x-request-id", "retry-after", "x-should-retry"];
const corsOrigins = (setting: string) => (setting === "*" ? "*" : setting.split(",").map((s) => s.trim()));

/** Request ids, CORS headers and error rendering, shared by the router and the completions hot path. */
function createEdge(deps: AppDeps): Edge {
  const origins = corsOrigins(deps.corsOrigin);
  const expose = EXPOSED_HEADERS.join(",");
  return {
    requestId: (given) => (given && /^[\w.:-]{1,64}$/.test(given) ? given : `req_${deps.id()}`),
    // What Hono's cors middleware sets on a response that is not a preflight.
    cors(origin): Record<string, string> {
      const allow = origins === "*" ? "*" : origin && origins.includes(origin) ? origin : null;
      return allow ? { "access-control-allow-origin": allow, "access-control-expose-headers": expose } : { "access-control-expose-headers": expose };
    },
    record(route, line) {
      deps.metrics?.request(route, line.status);
      deps.logger.request(line);
    },
    render(err, method, path) {
      const error =
        err instanceof ApiError ? err : err instanceof HTTPException ? new ApiError(err.status, err.message || "Invalid request", { code: "invalid_request" }) : toApiError(err);
      if (error.status >= 500 && !(err instanceof ApiError)) deps.logger.error(`unhandled ${err instanceof Error ? err.name : typeof err} on ${method} ${path}`);
      return { error, headers: error.headers() };
    },
  };
}
