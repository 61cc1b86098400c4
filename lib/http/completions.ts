// POST /v1/chat/completions, served without the router: the gateway's hot path, one function per request.
//
// Why not a Hono route like the others: at 20 concurrent streams the router, six middlewares and the async
// validator chain cost a third of the gateway's CPU per completion. This handler does the same things in one
// pass (request id, CORS, authentication before the body, body limit, media type, JSON, zod validation, access
// log, metrics, the one error renderer) and app.ts hands it the requests before Hono sees them. The route is
// still declared in the OpenAPI document from the same zod schema that validates here.
import type { Auth } from "./auth.ts";
import { type Edge, isPostTo, parseRequest } from "./edge.ts";
import type { ChatDeps } from "../chat/reply.ts";
import { callerScope, type Threads } from "../chat/threads.ts";
import { openTurn, type Turn, type TurnRequest } from "../chat/turn.ts";
import { TokenExpiredError } from "../chat/expiry.ts";
import { ApiError } from "../errors.ts";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import { type ChatRequest, ChatRequestSchema } from "./schemas.ts";
import { collectCompletion, completionFrames, type FramedReply } from "../chat/respond.ts";
import { DirectAnswer } from "./response.ts";
import type { IncomingRequest } from "./request.ts";
import { SSE_HEADERS } from "../openai/sse.ts";
import { Cutter, type Tokenizer, type Usage } from "../openai/translate.ts";
import { UpstreamError } from "../upstream/errors.ts";
import type { Admission, KeyLimiter, Sent } from "../chat/key-limits.ts";

export const CHAT_PATH = "/v1/chat/completions";
export const MODEL = "emohaa";

export interface CompletionsDeps {
  chat: ChatDeps;
  auth: Auth;
  logger: Logger;
  metrics?: Metrics;
  tokenizer: () => Promise<Tokenizer>;
  promptMaxBytes: number;
  keepAliveMs: number;
  maxBodyBytes: number;
  now: () => number;
  id: () => string;
  /** Kept conversations (native multi-turn); absent when CONTINUE_CONVERSATIONS=false. */
  threads?: Threads;
  /** Gateway keys' limits and usage (server-side mode). */
  limits?: KeyLimiter;
}

/** The response header naming the kept conversation a reply belongs to (native multi-turn). */
export const CONVERSATION_HEADER = "x-emohaa-conversation";
/** The response header saying how the turn relates to it (lib/chat/turn.ts, `Continuation`). */
export const CONTINUATION_HEADER = "x-emohaa-continuation";
/** The request header asking for a fresh conversation whatever the history: `1` or `true`. */
export const NEW_CONVERSATION_HEADER = "x-emohaa-new-conversation";

/** Whether a request is one for this handler. */
export function isCompletionsRequest(req: IncomingRequest): boolean {
  return isPostTo(req, CHAT_PATH);
}

/**
 * With server-side tokens, Emohaa rejecting them is the server's problem, not the caller's: a 401 would read as
 * "your API key is wrong". A client's own rejected token stays a 401.
 */
export function ownAccountsError(err: unknown): unknown {
  if (err instanceof TokenExpiredError) {
    return new ApiError(
      503,
      `The server's Emohaa accounts are unavailable: every server token has expired, the last at ${err.expiredAt}`,
      { code: "accounts_unavailable" },
    );
  }
  if (!(err instanceof UpstreamError) || err.kind !== "auth") return err;
  return new ApiError(
    503,
    "The server's Emohaa accounts are unavailable: Emohaa rejected every token tried (expired or invalid)",
    { code: "accounts_unavailable" },
  );
}

/** The request's `user` field (accepted, not in the schema): two end users of one key never share a conversation. */
function userOf(body: ChatRequest): string | undefined {
  const user = (body as Record<string, unknown>).user;
  return typeof user === "string" ? user : undefined;
}

/** One turn's HTTP exchange, as the chat-like POST routes (this one, `/v1/responses`) answer it. */
export interface TurnExchange {
  /** The request's start, by `deps.now`. */
  readonly start: number;
  /** The response headers so far: request id, CORS, a key's rate limit, then the turn's. */
  readonly headers: Record<string, string>;
  /** The Emohaa tokens the caller may use (its own, or the server's behind its gateway key). */
  readonly tokens: readonly string[];
  /**
   * Where the reply's end tells what the client received (`ReplyContext.onSent`), for the usage of the caller's
   * gateway key: undefined when nothing is counted (no key).
   */
  sent(prompt: string): ((content: string, usage?: Usage) => void) | undefined;
  /** What `ReplyContext.beforeLast` awaits: the key's concurrency slot freed; undefined when there is none. */
  release(): (() => Promise<void>) | undefined;
  /** Counts upstream attempts for the access log (`onAttempt` of the turn request). */
  onAttempt(attempts: number): void;
  /** What every turn request of this exchange says alike: fresh or not, the prompt bound, the client's signal. */
  turnRequest(
    stream: boolean,
  ): Pick<TurnRequest, "fresh" | "promptMaxBytes" | "signal" | "holdMs"> & { onAttempt(attempts: number): void };
  /**
   * The turn opened: its conversation headers and the turn metric; resolves the cutter of its reply (stop
   * sequences, a token limit once the tokenizer loaded). The reply is closed if that fails.
   */
  opened(turn: Turn, cut: { stop: string[]; maxTokens?: number; tokenizer?: Promise<Tokenizer> }): Promise<Cutter>;
  /** A whole answer: logged as a 200. */
  json(result: unknown): Response;
  /**
   * A streamed answer: logged, and counted in flight, until its frames' own end. A Response with a stream, or for
   * lib/http/server.ts (`info.direct`) a DirectAnswer: the frames pushed as text to the socket.
   */
  stream(open: (onEnd: (o: { status: number; code: string | null }) => void) => FramedReply): Response | DirectAnswer;
}

/**
 * The frame of a chat-like POST route: request id, CORS, the access-log line (when the answer ends, for a stream),
 * the streams-in-flight gauge, and every error rendered by the one renderer (with server-side tokens, a rejected
 * account is the server's 503). `serve` does the route's own work.
 */
export function turnHandler(
  deps: CompletionsDeps,
  edge: Edge,
  route: string,
  serve: (req: IncomingRequest, x: TurnExchange) => Promise<Response | DirectAnswer>,
): (req: IncomingRequest, info?: { direct?: true }) => Promise<Response | DirectAnswer> {
  return async (req, info) => {
    const start = deps.now();
    const id = edge.requestId(req.headers.get("x-request-id"));
    const headers: Record<string, string> = { "x-request-id": id, ...edge.cors(req.headers.get("origin")) };
    let attempts = 0;
    let key: string | undefined;
    let admission: Admission | undefined;
    let sent: Sent | undefined;
    let tokens: readonly string[] = [];
    const line = (status: number, code: string | null) => {
      admission?.end(sent);
      edge.record(route, { method: "POST", path: route, status, ms: deps.now() - start, attempts, id, code, key });
    };
    const x: TurnExchange = {
      start,
      headers,
      get tokens() {
        return tokens;
      },
      sent: (prompt) => admission && ((content, usage) => (sent = { prompt, content, usage })),
      release: () => admission?.release,
      onAttempt: (n) => (attempts = n),
      turnRequest: (stream) => ({
        fresh: wantsFresh(req),
        promptMaxBytes: deps.promptMaxBytes,
        signal: req.signal,
        holdMs: stream ? deps.keepAliveMs : Infinity,
        onAttempt: x.onAttempt,
      }),
      async opened(turn, { stop, maxTokens, tokenizer }) {
        if (turn.handle) headers[CONVERSATION_HEADER] = turn.handle;
        headers[CONTINUATION_HEADER] = turn.continuation;
        deps.metrics?.turn(turn.continuation);
        try {
          // The reply's watchdogs wait while nobody reads it (lib/chat/reply.ts): the tokenizer's first load is ours.
          return new Cutter({ stop, maxTokens, tokenizer: maxTokens !== undefined ? await tokenizer : undefined });
        } catch (err) {
          turn.reply.close();
          throw err;
        }
      },
      json(result) {
        line(200, null);
        headers["content-type"] = "application/json";
        return new Response(JSON.stringify(result), { status: 200, headers });
      },
      stream(open) {
        const metrics = deps.metrics;
        if (metrics) metrics.streamsInFlight++;
        const frames = open((o) => {
          if (metrics) metrics.streamsInFlight--;
          line(o.status, o.code);
        });
        Object.assign(headers, SSE_HEADERS);
        if (info?.direct) return new DirectAnswer(200, headers, frames.push);
        return new Response(frames.stream(), { status: 200, headers });
      },
    };
    try {
      // Authentication and the key's limits come before the body is read: a caller without a valid key, or over
      // its limits, learns nothing about validation and costs no more than its headers.
      const caller = deps.auth.callerFor(req.headers.get("authorization"));
      tokens = caller.tokens;
      if (caller.key) {
        key = caller.key.name;
        if (deps.limits) {
          admission = await deps.limits.admit(caller.key);
          Object.assign(headers, admission.headers);
        }
      }
      return await serve(req, x);
    } catch (err) {
      const { error, headers: extra } = edge.render(deps.auth.serverSide ? ownAccountsError(err) : err, "POST", route);
      line(error.status, error.code);
      Object.assign(headers, extra);
      headers["content-type"] = "application/json";
      return new Response(JSON.stringify(error.toJSON()), { status: error.status, headers });
    }
  };
}

/** Whether the client asked for a fresh conversation (`x-emohaa-new-conversation: 1` or `true`). */
const wantsFresh = (req: IncomingRequest) => /^(1|true)$/i.test(req.headers.get(NEW_CONVERSATION_HEADER) ?? "");

/** Builds the handler. `edge` is shared with the Hono app, so both answer alike. */
export function completionsHandler(
  deps: CompletionsDeps,
  edge: Edge,
): (req: IncomingRequest, info?: { direct?: true }) => Promise<Response | DirectAnswer> {
  return turnHandler(deps, edge, CHAT_PATH, async (req, x) => {
    const tokens = x.tokens;
    const body = await parseRequest(req, deps.maxBodyBytes, ChatRequestSchema);
    if (body.n != null && body.n !== 1) {
      throw new ApiError(400, "Only n=1 is supported: Emohaa gives one answer per request", {
        code: "unsupported_value",
        param: "n",
      });
    }
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
    const stop = body.stop == null ? [] : typeof body.stop === "string" ? [body.stop] : body.stop;
    const stream = body.stream === true;
    const includeUsage = stream && body.stream_options?.include_usage === true;
    // The tokenizer (loaded on first use) loads while the upstream answers, and is awaited only where needed:
    // the cutter needs it for the first piece, usage at the end.
    const tokenizer = maxTokens !== undefined || !stream || includeUsage ? deps.tokenizer() : undefined;
    tokenizer?.catch(() => {}); // observed where it is awaited; never an unhandled rejection
    const head = { id: `chatcmpl-${deps.id()}`, created: Math.floor(deps.now() / 1000), model: MODEL };
    const bearer = req.headers.get("authorization") ?? "";
    const turn = await openTurn(deps.chat, deps.threads, {
      tokens,
      scope: deps.threads ? callerScope(bearer, tokens, userOf(body)) : "",
      model: body.model ?? MODEL,
      messages: body.messages,
      ...x.turnRequest(stream),
    });
    const cutter = await x.opened(turn, { stop, maxTokens, tokenizer });
    const { reply, first, prompt } = turn;
    const ctx = {
      head,
      reply,
      first,
      cutter,
      prompt,
      tokenizer,
      onComplete: deps.threads && turn.complete,
      onDelivered: deps.threads && turn.delivered,
      onSent: x.sent(prompt),
      beforeLast: x.release(),
    };
    if (!stream) return x.json(await collectCompletion(ctx));
    return x.stream((onEnd) => completionFrames(ctx, { includeUsage, keepAliveMs: deps.keepAliveMs, onEnd }));
  });
}
