// createApp(deps): the HTTP surface — routes, CORS, request ids, logging and the one error renderer.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { routePath } from "hono/route";
import type { ChatDeps } from "../chat/reply.ts";
import {
  CHAT_PATH,
  completionsHandler,
  CONTINUATION_HEADER,
  CONVERSATION_HEADER,
  isCompletionsRequest,
  MODEL,
  NEW_CONVERSATION_HEADER,
} from "./completions.ts";
import { conversationRoutes } from "./conversations.ts";
import { asRequest, type ServerRequest } from "./request.ts";
import type { Threads } from "../chat/threads.ts";
import {
  addResponseRoutes,
  isResponsesRequest,
  responsesHandler,
  type ResponseThreads,
  statelessThreads,
} from "./responses.ts";
import type { EmohaaClient } from "../upstream/emohaa.ts";
import { UpstreamError } from "../upstream/errors.ts";
import {
  bearerScheme,
  chatRequestExamples,
  documentConfig,
  errorResponse,
  errorResponses,
  RATE_LIMIT_HEADERS,
  streamExample,
} from "./apidoc.ts";
import { readBody } from "./body.ts";
import { docsRoutes } from "../web/swagger.ts";
import { playgroundRoutes } from "../web/playground.ts";
import { withDeadline } from "../chat/deadline.ts";
import { ApiError } from "../errors.ts";
import { createEdge } from "./edge.ts";
import { invalidRequest } from "./errors.ts";
import { type Logger, maskedPath } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import {
  ChatRequestSchema,
  ChunkSchema,
  CompletionSchema,
  ModelListSchema,
  ModelSchema,
  TokenCheckRequestSchema,
  TokenCheckResponseSchema,
  TokenStatusSchema,
} from "./schemas.ts";
import type { Auth } from "./auth.ts";
import { type Pool, tokenLabel } from "../chat/pool.ts";
import { expiresAtIso, expiresAtMs, isExpired } from "../chat/expiry.ts";
import { clientKey, RateLimiter } from "./ratelimit.ts";
import { type AdminDeps, adminRoutes } from "./admin.ts";
import { type KeyAdminDeps, keyAdminRoutes } from "./admin-keys.ts";
import type { KeyLimiter } from "../chat/key-limits.ts";
import { isUsableToken } from "./bearer.ts";
import type { Tokenizer } from "../openai/translate.ts";

export interface AppDeps {
  chat: ChatDeps;
  auth: Auth;
  pool: Pool;
  client: EmohaaClient;
  logger: Logger;
  tokenizer: () => Promise<Tokenizer>;
  promptMaxBytes: number;
  keepAliveMs: number;
  corsOrigin: string;
  /** Request bodies over this size are refused with 413 (MAX_BODY_BYTES). */
  maxBodyBytes: number;
  /** Served at `/metrics` when given. */
  metrics?: Metrics;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** A fresh random id (request ids, completion ids). */
  id: () => string;
  /** POST /token/check per client address: checks per minute and at once (TOKEN_CHECK_RATE, TOKEN_CHECK_BURST). */
  tokenCheckLimit: { perMinute: number; burst: number };
  /** Take the client's address from X-Forwarded-For's last entry (behind one reverse proxy). */
  trustProxy?: boolean;
  /** The admin API of the server-side tokens (lib/http/admin.ts); absent in client mode. */
  admin?: AdminDeps;
  /** The admin API of the gateway keys (lib/http/admin-keys.ts); absent in client mode. */
  keyAdmin?: KeyAdminDeps;
  /** Gateway keys' limits and usage on the chat and Responses routes (server-side mode). */
  limits?: KeyLimiter;
  /** The conversations of `/v1/responses` (default: a new one per response, no response id known). */
  responseThreads?: ResponseThreads;
  /** Kept conversations (native multi-turn); absent when CONTINUE_CONVERSATIONS=false. */
  threads?: Threads;
}

/** What the runtime tells about a request besides the request itself: `app.fetch(req, info)` (runtime/serve.ts). */
export interface ClientInfo {
  /** The peer's IP address; absent (tests, some platforms): every client shares the key "unknown". */
  remoteAddress?: string;
}

type Env = {
  // Undefined when the caller passes none (`app.request` in tests): read it as `c.env?.`.
  Bindings: ClientInfo;
  Variables: {
    requestId: string;
    /** The error code of a failed request, for the access log. */
    errorCode?: string | null;
  };
};

/** A bearer that some configurations require and others do not (see the route's description). */
const OPTIONAL_BEARER: Record<string, string[]>[] = [{}, { bearer: [] }];

const chatRoute = createRoute({
  method: "post",
  path: CHAT_PATH,
  tags: ["Chat"],
  summary: "Create a chat completion (OpenAI-compatible)",
  operationId: "createChatCompletion",
  description:
    "Sends the conversation to Emohaa as one prompt and answers like OpenAI. With `stream: true` the answer is a " +
    "`text/event-stream` of `ChatCompletionChunk` frames ending with `data: [DONE]`. A client that disconnects cancels " +
    "the upstream request. The Emohaa conversation is deleted, or kept for the next turn when the client received " +
    "the reply whole: a later history that is this one plus the reply plus new user messages sends only the new " +
    "messages on it (native multi-turn; `x-emohaa-conversation` names it, `CONTINUE_CONVERSATIONS` turns it off).",
  security: [{ bearer: [] }],
  request: {
    headers: z.object({
      [NEW_CONVERSATION_HEADER]: z.enum(["1", "true"]).optional().openapi({
        description: "Start a fresh Emohaa conversation with the merged history, even when the history continues a " +
          "kept one (native multi-turn)",
      }),
    }),
    body: {
      required: true,
      content: { "application/json": { schema: ChatRequestSchema, examples: chatRequestExamples } },
    },
  },
  responses: {
    200: {
      headers: {
        ...RATE_LIMIT_HEADERS,
        [CONVERSATION_HEADER]: {
          description: "The kept Emohaa conversation this reply belongs to: its next turn (this history plus the " +
            "reply plus new user messages) continues it; `DELETE /v1/conversations/{handle}` ends it",
          schema: { type: "string", example: "conv-3f2a9c0d1e7b4a6f8c5d2e1f0a9b8c7d" },
        },
        [CONTINUATION_HEADER]: {
          description: "`continued`: only the new messages were sent, on the kept conversation; `new`: a fresh one; " +
            "`fresh-after-busy` / `fresh-after-error`: the kept one's account stayed busy past the queue timeout, or " +
            "Emohaa lost it, so the merged history went to a fresh one; `fresh-after-evicted`: the kept one was " +
            "deleted to stay within KEPT_PER_ACCOUNT or KEPT_MAX, the same; `off`: CONTINUE_CONVERSATIONS=false",
          schema: {
            type: "string",
            enum: ["new", "continued", "fresh-after-busy", "fresh-after-error", "fresh-after-evicted", "off"],
          },
        },
      },
      description: "The completion as JSON, or with `stream: true` an event stream: one `data:` line of JSON per chunk",
      content: {
        "application/json": { schema: CompletionSchema },
        "text/event-stream": {
          schema: ChunkSchema,
          examples: { stream: { summary: "A streamed reply, as sent on the wire", value: streamExample } },
        },
      },
    },
    ...errorResponses(400, 401, 429, 500, 502, 503, 504),
  },
});

const tokenCheckRoute = createRoute({
  method: "post",
  path: "/token/check",
  tags: ["Tokens"],
  summary: "Check whether an Emohaa token is alive",
  operationId: "checkToken",
  description:
    "Upstream errors and timeouts answer `live: false`, and so does a JWT whose `exp` has passed, without asking Emohaa; " +
    "`expiresAt` is that `exp` as an ISO time (null for a token that is not a JWT or has none). Limited per client address (`TOKEN_CHECK_RATE` per minute, bursts of " +
    "`TOKEN_CHECK_BURST`; the original advised one check per token every 10 minutes). When the server holds the tokens " +
    "(EMOHAA_TOKENS) it needs a gateway key.",
  security: OPTIONAL_BEARER,
  request: { body: { required: true, content: { "application/json": { schema: TokenCheckRequestSchema } } } },
  responses: {
    200: {
      description: "Whether the token is alive",
      content: { "application/json": { schema: TokenCheckResponseSchema } },
    },
    ...errorResponses(400),
    ...errorResponse(401, "Server-side mode: a missing or wrong API key", {
      value: {
        error: {
          message: "Invalid API key: this server holds the Emohaa tokens; send one of its API keys as the bearer",
          type: "authentication_error",
          param: null,
          code: "invalid_api_key",
        },
      },
    }),
    ...errorResponse(429, "Too many checks from this client address; `retry-after` says when the next one is allowed", {
      value: {
        error: {
          message: "Too many token checks from this address (1 per minute, bursts of 10); retry in 42 s",
          type: "rate_limit_error",
          param: null,
          code: "rate_limit_exceeded",
        },
      },
    }),
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

const modelRoute = createRoute({
  method: "get",
  path: "/v1/models/{model}",
  tags: ["Models"],
  summary: "Retrieve one model",
  operationId: "retrieveModel",
  description:
    "The model object for `emohaa`; any other name is a 404, as OpenAI answers for a model it does not serve.",
  request: {
    params: z.object({ model: z.string().max(200).openapi({ param: { name: "model", in: "path" }, example: MODEL }) }),
  },
  responses: {
    200: { description: "The model", content: { "application/json": { schema: ModelSchema } } },
    ...errorResponse(404, "No such model", {
      value: {
        error: {
          message: "The model 'gpt-4o' does not exist",
          type: "not_found_error",
          param: "model",
          code: "model_not_found",
        },
      },
    }),
  },
});

/** The one model this server serves, as OpenAI describes a model. */
const MODEL_OBJECT = { id: MODEL, object: "model" as const, created: 1710000000, owned_by: "emohaa-free-api" };

const pingRoute = createRoute({
  method: "get",
  path: "/ping",
  tags: ["Health"],
  summary: "Liveness check",
  operationId: "ping",
  responses: {
    200: {
      description: "Always `pong`",
      content: { "text/plain": { schema: z.string().openapi({ example: "pong" }) } },
    },
  },
});

const metricsRoute = createRoute({
  method: "get",
  path: "/metrics",
  tags: ["Health"],
  summary: "Prometheus metrics",
  operationId: "metrics",
  description:
    "Requests by route and status, streams in flight, upstream time to first piece, open conversations, token pool states, " +
    "seconds to each server-side token's JWT expiry (by masked label). " +
    "Counts only. Needs `METRICS_KEY` as the bearer when that is set; otherwise a gateway key when the server holds the " +
    "tokens, and nothing in client mode.",
  security: OPTIONAL_BEARER,
  responses: {
    200: { description: "Prometheus text format 0.0.4", content: { "text/plain": { schema: z.string() } } },
    ...errorResponse(401, "A missing or wrong METRICS_KEY, or in server-side mode API key", {
      value: {
        error: {
          message: "Invalid metrics key: send METRICS_KEY as the bearer",
          type: "authentication_error",
          param: null,
          code: "invalid_api_key",
        },
      },
    }),
  },
});

const tokenStatusRoute = createRoute({
  method: "get",
  path: "/v1/tokens/status",
  tags: ["Tokens"],
  summary: "Health of the token pool",
  operationId: "tokenStatus",
  description:
    "With server-side tokens (EMOHAA_TOKENS), lists the pool's tokens and needs a gateway key. Otherwise lists the tokens of the " +
    "caller's own bearer. Tokens are shown only as a masked label derived from their SHA-256, with the expiry their JWT `exp` says.",
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

  const edge = createEdge({
    corsOrigin: deps.corsOrigin,
    exposeHeaders: EXPOSED_HEADERS,
    logger: deps.logger,
    metrics: deps.metrics,
    id: deps.id,
  });

  // The edge's headers go on the answer once it is there, whatever made it (a copy when its headers are immutable,
  // as Response.redirect's are).
  const finish = (c: Context<Env>, headers: Record<string, string>) => {
    const add = (res: Response) => {
      for (const [k, v] of Object.entries(headers)) {
        if (k === "vary") res.headers.append(k, v);
        else res.headers.set(k, v);
      }
    };
    try {
      add(c.res);
    } catch {
      c.res = new Response(c.res.body, c.res);
      add(c.res);
    }
  };

  app.use("*", async function requestId(c, next) {
    const id = edge.requestId(c.req.header("x-request-id"));
    c.set("requestId", id);
    await next();
    finish(c, { "x-request-id": id });
  });

  app.use("*", async function accessLog(c, next) {
    const start = deps.now();
    await next();
    // The last matched route's pattern (not the raw path) keeps the metrics' label set bounded.
    const last = routePath(c, -1);
    const route = last === "/*" || last === "*" ? "unmatched" : last;
    edge.record(route, {
      method: c.req.method,
      // Response ids and conversation handles can continue or end a conversation: logged masked.
      path: maskedPath(c.req.path, last),
      status: c.res.status,
      ms: deps.now() - start,
      id: c.get("requestId"),
      code: c.get("errorCode") ?? null,
    });
  });

  // CORS: a preflight is answered here, for any path; every other answer gets the edge's headers.
  app.use("*", async function cors(c, next) {
    if (c.req.method === "OPTIONS") return edge.preflight(c.req.raw);
    await next();
    finish(c, edge.cors(c.req.header("origin")));
  });

  // Before the body is read: a caller without a key or over its budget costs no more than its headers.
  const { perMinute, burst } = deps.tokenCheckLimit;
  const checks = new RateLimiter({ perMinute, burst, now: deps.now });
  app.use("/token/check", async function tokenCheckGuard(c, next) {
    if (c.req.method === "POST") {
      deps.auth.requireKey(c.req.header("authorization"));
      const wait = checks.take(
        clientKey(c.env?.remoteAddress, c.req.header("x-forwarded-for"), deps.trustProxy ?? false),
      );
      if (wait) {
        throw new ApiError(
          429,
          `Too many token checks from this address (${perMinute} per minute, bursts of ${burst}); retry in ${wait} s`,
          {
            code: "rate_limit_exceeded",
            retryAfter: wait,
          },
        );
      }
    }
    await next();
  });

  const maxBody = deps.maxBodyBytes;
  // The whole body, read once within the bound; a client that leaves mid-body is a 499 (lib/http/body.ts).
  app.use("*", async function body(c, next) {
    const raw = c.req.raw;
    if (raw.body && raw.method !== "GET" && raw.method !== "HEAD") {
      c.req.raw = new Request(raw, { body: await readBody(raw, maxBody) });
    }
    await next();
  });

  app.onError((err, c) => {
    const { error, headers } = edge.render(err, c.req.method, maskedPath(c.req.path, routePath(c, -1)));
    for (const [k, v] of Object.entries(headers)) c.header(k, v);
    c.set("errorCode", error.code);
    // 499 is nginx's "client closed request": nobody reads it, but it logs honestly.
    return c.json(error.toJSON(), error.status as 400);
  });

  app.notFound((c) => {
    const e = new ApiError(404, `No route for ${c.req.method} ${c.req.path}`, { code: "not_found" });
    return c.json(e.toJSON(), 404);
  });

  // The chat route is served by lib/http/completions.ts before the router (see there why); it is declared here for
  // the OpenAPI document.
  app.openAPIRegistry.registerPath(chatRoute);
  const responseThreads = deps.responseThreads ?? statelessThreads(deps.chat);
  addResponseRoutes(app, deps, responseThreads);

  app.openapi(tokenCheckRoute, async (c) => {
    const { token } = c.req.valid("json");
    let live = false;
    const expiresAt = expiresAtIso(token);
    // A token that cannot travel in a header, or whose JWT exp has passed, is not alive and never reaches the upstream.
    if (isUsableToken(token) && !isExpired(token, deps.now())) {
      try {
        await withDeadline(
          deps.chat.timeouts.createMs,
          "token check",
          (signal) => deps.client.listConversations(token, signal),
        );
        live = true;
      } catch (err) {
        live = false;
        if (err instanceof UpstreamError) deps.pool.report(token, err.kind);
      }
      // The check feeds the pool's health state like any request.
      if (live) deps.pool.report(token, "ok");
    }
    return c.json({ live, expiresAt }, 200);
  });

  app.openapi(modelsRoute, (c) => c.json({ object: "list" as const, data: [MODEL_OBJECT] }, 200));

  app.openapi(modelRoute, (c) => {
    const { model } = c.req.valid("param");
    if (model !== MODEL) {
      // As OpenAI answers an unknown model: a 404 with code model_not_found naming the parameter.
      throw new ApiError(404, `The model '${model}' does not exist`, { code: "model_not_found", param: "model" });
    }
    return c.json(MODEL_OBJECT, 200);
  });

  app.openapi(pingRoute, (c) => c.text("pong", 200));

  if (deps.metrics) {
    const metrics = deps.metrics;
    app.openapi(metricsRoute, async (c) => {
      deps.auth.requireMetricsKey(c.req.header("authorization"));
      // A shared pool counts its accounts as every instance sees them (one bounded store read, cached a while).
      const counts = await deps.pool.counts();
      const text = metrics.render({
        conversationsOpen: deps.chat.conversations.open,
        deletionsFailed: deps.chat.conversations.deleteFailures,
        pool: { ...counts, waiting: deps.pool.waiting },
        tokenExpiry: tokenExpiry(deps.auth.serverTokens(), deps.now()),
      });
      return c.text(text, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
    });
  }

  app.openapi(tokenStatusRoute, async (c) => {
    const header = c.req.header("authorization");
    // Server-side mode: the pool's own tokens, behind a gateway key. Client mode: only the caller's own tokens.
    const tokens = deps.auth.tokensFor(header);
    // A shared pool reads every instance's leases from the state store.
    const status = await deps.pool.status(tokens);
    return c.json({
      mode: deps.auth.serverSide ? ("server" as const) : ("client" as const),
      waiting: deps.pool.waiting,
      tokens: status,
    }, 200);
  });

  if (deps.admin) app.route("/", adminRoutes(deps.admin));
  if (deps.keyAdmin) app.route("/", keyAdminRoutes(deps.keyAdmin));
  conversationRoutes(app, deps);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", bearerScheme);

  app.doc31("/openapi.json", documentConfig);

  // Swagger UI at /docs and the playground at /; all files are embedded.
  app.route("/", docsRoutes());
  app.route("/", playgroundRoutes());

  // The hot path first: chat completions skip the router (lib/http/completions.ts); `app.request` in tests goes here too.
  const completions = completionsHandler({ ...deps, maxBodyBytes: maxBody }, edge);
  const responses = responsesHandler({ ...deps, maxBodyBytes: maxBody }, edge, responseThreads);
  const routed = app.fetch;
  // A DirectAnswer goes only to a caller whose `info.direct` asked for one (lib/http/server.ts): to every other
  // (Bun.serve, Deno.serve, `app.request`) this is a fetch handler like Hono's own. It is `lean` too: the project's
  // server gives it its own request (lib/http/request.ts), made a Request only for the router's routes.
  const serve = (
    req: Request | ServerRequest,
    info?: ClientInfo & { direct?: true },
    ctx?: Parameters<typeof routed>[2],
  ) => {
    // A Host that is not host[:port] never reaches a route (lib/http/edge.ts says why).
    const refused = edge.badHost(req);
    if (refused) return refused;
    if (isCompletionsRequest(req)) return completions(req, info);
    return isResponsesRequest(req) ? responses(req, info) : routed(asRequest(req), info, ctx);
  };
  app.fetch = Object.assign(serve, { lean: true as const }) as unknown as typeof app.fetch;
  return app;
}

/** Seconds left per server-side token that says when it ends, by masked label (for `/metrics`). */
function tokenExpiry(tokens: readonly string[], now: number): { label: string; seconds: number }[] {
  const out: { label: string; seconds: number }[] = [];
  for (const t of tokens) {
    const at = expiresAtMs(t);
    if (at !== undefined) out.push({ label: tokenLabel(t), seconds: Math.round((at - now) / 1000) });
  }
  return out;
}

const EXPOSED_HEADERS = [
  "x-request-id",
  "retry-after",
  "x-should-retry",
  CONVERSATION_HEADER,
  CONTINUATION_HEADER,
  ...Object.keys(RATE_LIMIT_HEADERS),
];
