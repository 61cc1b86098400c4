// createApp(deps): the HTTP surface — routes, CORS, request ids, logging and the one error renderer.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import type { ChatDeps } from "./chat.ts";
import { openReply } from "./chat.ts";
import type { EmohaaClient } from "./emohaa.ts";
import { ApiError, toApiError } from "./errors.ts";
import type { Logger } from "./log.ts";
import {
  ChatRequestSchema,
  ChunkSchema,
  CompletionSchema,
  ErrorSchema,
  ModelListSchema,
  TokenCheckRequestSchema,
  TokenCheckResponseSchema,
} from "./openai.ts";
import { buildPrompt } from "./prompt.ts";
import { collectCompletion, streamCompletion } from "./respond.ts";
import { SSE_HEADERS } from "./sse.ts";
import { parseBearer } from "./tokens.ts";
import { Cutter, type Tokenizer } from "./translate.ts";

export interface AppDeps {
  chat: ChatDeps;
  client: EmohaaClient;
  logger: Logger;
  tokenizer: () => Promise<Tokenizer>;
  promptMaxBytes: number;
  keepAliveMs: number;
  corsOrigin: string;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** A fresh random id (request ids, completion ids). */
  id: () => string;
  /** The playground page served at `/`. */
  homePage?: () => Response | Promise<Response>;
}

type Env = { Variables: { requestId: string; attempts?: number; streamEnd?: Promise<{ status: number; code: string | null }> } };

const MODEL = "emohaa";

const errorResponses = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((s) => [s, { description: STATUS_TEXT[s] ?? "Error", content: { "application/json": { schema: ErrorSchema } } }]),
  );

const STATUS_TEXT: Record<number, string> = {
  400: "Invalid request (`param` names the field)",
  401: "Missing, expired or rejected token",
  404: "Not found",
  429: "Rate limited by Emohaa, or the account is busy (`retry-after` says when to retry)",
  502: "Emohaa failed or could not be reached",
  504: "Emohaa did not answer in time",
};

const chatRoute = createRoute({
  method: "post",
  path: "/v1/chat/completions",
  tags: ["Chat"],
  summary: "Create a chat completion (OpenAI-compatible)",
  security: [{ bearer: [] }],
  request: { body: { required: true, content: { "application/json": { schema: ChatRequestSchema } } } },
  responses: {
    200: {
      description: "The completion as JSON, or with `stream: true` an event stream of chunks",
      content: { "application/json": { schema: CompletionSchema }, "text/event-stream": { schema: ChunkSchema } },
    },
    ...errorResponses(400, 401, 429, 502, 504),
  },
});

const tokenCheckRoute = createRoute({
  method: "post",
  path: "/token/check",
  tags: ["Tokens"],
  summary: "Check whether an Emohaa token is alive",
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
  responses: { 200: { description: "The model list", content: { "application/json": { schema: ModelListSchema } } } },
});

const pingRoute = createRoute({
  method: "get",
  path: "/ping",
  tags: ["Health"],
  summary: "Liveness check",
  responses: { 200: { description: "Always `pong`", content: { "text/plain": { schema: z.string().openapi({ example: "pong" }) } } } },
});

/** Builds the gateway app around its dependencies; nothing here reads the environment or a runtime global. */
export function createApp(deps: AppDeps): OpenAPIHono<Env> {
  const app = new OpenAPIHono<Env>({
    defaultHook: (result) => {
      if (!result.success) {
        const issue = result.error.issues[0]!;
        const param = issue.path.length ? issue.path.join(".") : null;
        throw new ApiError(400, `Invalid request${param ? ` at ${param}` : ""}: ${issue.message}`, { code: "invalid_request", param });
      }
    },
  });

  app.use("*", async function requestId(c, next) {
    const given = c.req.header("x-request-id");
    const id = given && /^[\w.:-]{1,64}$/.test(given) ? given : `req_${deps.id()}`;
    c.set("requestId", id);
    c.header("x-request-id", id);
    await next();
  });

  app.use("*", async function accessLog(c, next) {
    const start = deps.now();
    await next();
    const line = (status: number, code: string | null) =>
      deps.logger.request({ method: c.req.method, path: c.req.path, status, ms: deps.now() - start, attempts: c.get("attempts"), id: c.get("requestId"), code });
    const streamEnd = c.get("streamEnd");
    if (streamEnd) streamEnd.then((o) => line(o.status, o.code));
    else line(c.res.status, null);
  });

  app.use(
    "*",
    cors({
      origin: deps.corsOrigin === "*" ? "*" : deps.corsOrigin.split(",").map((s) => s.trim()),
      exposeHeaders: ["x-request-id", "retry-after", "x-should-retry"],
      maxAge: 86400,
    }),
  );

  app.onError((err, c) => {
    const e =
      err instanceof ApiError ? err : err instanceof HTTPException ? new ApiError(err.status, err.message || "Invalid request", { code: "invalid_request" }) : toApiError(err);
    if (e.status >= 500 && !(err instanceof ApiError)) deps.logger.error(`unhandled ${err instanceof Error ? err.name : typeof err} on ${c.req.method} ${c.req.path}`);
    for (const [k, v] of Object.entries(e.headers())) c.header(k, v);
    // 499 is nginx's "client closed request": nobody reads it, but it logs honestly.
    return c.json(e.toJSON(), e.status as 400);
  });

  app.notFound((c) => {
    const e = new ApiError(404, `No route for ${c.req.method} ${c.req.path}`, { code: "not_found" });
    return c.json(e.toJSON(), 404);
  });

  app.openapi(chatRoute, async (c) => {
    const body = c.req.valid("json");
    if (body.n != null && body.n !== 1) throw new ApiError(400, "Only n=1 is supported: Emohaa gives one answer per request", { code: "unsupported_value", param: "n" });
    const tokens = parseBearer(c.req.header("authorization"));
    const { prompt } = buildPrompt(body.messages, deps.promptMaxBytes);
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
    const stop = body.stop == null ? [] : typeof body.stop === "string" ? [body.stop] : body.stop;
    const stream = body.stream === true;
    const includeUsage = stream && body.stream_options?.include_usage === true;
    const tokenizer = maxTokens !== undefined || !stream || includeUsage ? await deps.tokenizer() : undefined;
    const cutter = new Cutter({ stop, maxTokens, tokenizer });
    const head = { id: `chatcmpl-${deps.id()}`, created: Math.floor(deps.now() / 1000), model: MODEL };
    const signal = c.req.raw.signal;

    const { reply, first } = await openReply(deps.chat, tokens, prompt, signal, stream ? deps.keepAliveMs : Infinity).catch((err) => {
      if (err instanceof ApiError && err.status === 499) c.set("attempts", undefined);
      throw err;
    });
    c.set("attempts", reply.attempts);
    const ctx = { head, reply, first, cutter, prompt, tokenizer };
    if (!stream) {
      const result = await collectCompletion(ctx);
      return c.json(result, 200);
    }
    let resolveEnd!: (o: { status: number; code: string | null }) => void;
    c.set("streamEnd", new Promise((r) => (resolveEnd = r)));
    const body$ = streamCompletion(ctx, { includeUsage, keepAliveMs: deps.keepAliveMs, onEnd: resolveEnd });
    return c.body(body$, 200, SSE_HEADERS) as never;
  });

  app.openapi(tokenCheckRoute, async (c) => {
    const { token } = c.req.valid("json");
    let live = false;
    // A token that cannot travel in a header is not alive, and never reaches the upstream.
    if (/^[\x21-\x7e]+$/.test(token)) {
      try {
        await deps.client.listConversations(token, AbortSignal.timeout(deps.chat.timeouts.createMs));
        live = true;
      } catch {
        live = false;
      }
    }
    return c.json({ live }, 200);
  });

  app.openapi(modelsRoute, (c) =>
    c.json({ object: "list" as const, data: [{ id: MODEL, object: "model" as const, created: 1710000000, owned_by: "emohaa-free-api" }] }, 200),
  );

  app.openapi(pingRoute, (c) => c.text("pong", 200));

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "One Emohaa token, or several separated by commas: `Bearer T1,T2,T3`.",
  });

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: { title: "emohaa-free-api", version: "1.0.0", description: "OpenAI-compatible gateway for the Emohaa chatbot" },
  });

  app.get("/", async (c) => (deps.homePage ? deps.homePage() : c.text("emohaa-free-api is running. POST /v1/chat/completions")));

  return app;
}
