// Serving a fetch handler: the project's own HTTP/1.1 server (lib/http/server.ts) on each runtime's sockets, or the
// runtime's server (serveNative) for the upstream simulator; and the other per-runtime process helpers.
import { defaultMaxConnections } from "../lib/http/eviction.ts";
import { HTTP_TIMEOUTS } from "../lib/config.ts";
import { createHttpServer } from "../lib/http/server.ts";
import { listen, softFdLimit } from "./listen.ts";

/** What the runtime knows about a request besides the request: the peer's address (rate limits). */
export interface ClientInfo {
  remoteAddress?: string;
}

/** A fetch handler; `info` is given on every runtime, but handlers must work without it (tests, platforms). */
export type FetchHandler = (req: Request, info?: ClientInfo) => Response | Promise<Response>;

export interface Served {
  /** The port actually bound (useful with port 0). */
  port: number;
  hostname: string;
  /** Stops accepting connections; with `force`, ends the open ones too. */
  stop(force?: boolean): Promise<void>;
}

declare const Deno: any;

/** The runtime this process runs on. */
export function runtimeName(): "bun" | "deno" | "node" {
  if (typeof (globalThis as any).Bun !== "undefined") return "bun";
  if (typeof (globalThis as any).Deno !== "undefined") return "deno";
  return "node";
}

/** Connection limits of the server (see lib/config.ts); each has a default (HTTP_TIMEOUTS, defaultMaxConnections). */
export interface ConnectionLimits {
  headerTimeoutMs?: number;
  bodyTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Default: from the soft limit on open descriptors (see defaultMaxConnections). */
  maxConnections?: number;
}

export interface ServeOptions {
  port: number;
  hostname: string;
  limits?: ConnectionLimits;
  /** Where failures to accept connections are logged (default: stderr). */
  onError?(message: string): void;
}

/**
 * Serves `fetch` on `hostname:port` with lib/http/server.ts: head, body and idle timeouts, a connection cap with
 * eviction, and accept failures (out of descriptors) logged and retried, on Bun, Deno and Node alike.
 */
export async function serve(fetch: FetchHandler, options: ServeOptions): Promise<Served> {
  const limits = options.limits ?? {};
  const onError = options.onError ?? ((m: string) => console.error(`emohaa-free-api: ${m}`));
  const server = createHttpServer(fetch, {
    headerTimeoutMs: limits.headerTimeoutMs ?? HTTP_TIMEOUTS.headerTimeoutMs,
    bodyTimeoutMs: limits.bodyTimeoutMs ?? HTTP_TIMEOUTS.bodyTimeoutMs,
    idleTimeoutMs: limits.idleTimeoutMs ?? HTTP_TIMEOUTS.idleTimeoutMs,
    maxConnections: limits.maxConnections ?? defaultMaxConnections(await softFdLimit()),
    defaultHost: options.hostname.includes(":") ? `[${options.hostname}]` : options.hostname,
    onError,
  });
  const listener = await listen({
    port: options.port,
    hostname: options.hostname,
    accept: server.accept,
    onError,
    shed: server.shed,
  });
  return {
    port: listener.port,
    hostname: options.hostname,
    stop: async (force) => {
      listener.close();
      await server.stop(force);
    },
  };
}

/** Serves `fetch` with the runtime's own server (Bun.serve, Deno.serve, @hono/node-server): the simulator uses it. */
export async function serveNative(fetch: FetchHandler, options: { port: number; hostname: string }): Promise<Served> {
  const runtime = runtimeName();
  if (runtime === "bun") {
    const Bun = (globalThis as any).Bun;
    // idleTimeout 0: streams may be silent between keep-alives for longer than Bun's 10 s default.
    const server = Bun.serve({
      // A getter: only the routes that limit per client pay for the lookup, not the chat hot path.
      fetch: (req: Request, srv: any) =>
        fetch(req, {
          get remoteAddress() {
            return srv.requestIP(req)?.address;
          },
        }),
      port: options.port,
      hostname: options.hostname,
      idleTimeout: 0,
    });
    return { port: server.port, hostname: options.hostname, stop: async (force) => void (await server.stop(force)) };
  }
  if (runtime === "deno") {
    const ac = new AbortController();
    let bound = options.port;
    const server = Deno.serve(
      {
        port: options.port,
        hostname: options.hostname,
        signal: ac.signal,
        onListen: (addr: { port: number }) => (bound = addr.port),
      },
      (req: Request, info: { remoteAddr?: { hostname?: string } }) =>
        fetch(req, { remoteAddress: info?.remoteAddr?.hostname }),
    );
    return {
      port: server.addr?.port ?? bound,
      hostname: options.hostname,
      stop: async (force) => {
        if (force) ac.abort();
        else await server.shutdown();
        await server.finished;
      },
    };
  }
  return serveNode(fetch, options);
}

/**
 * Node (the `dist/index.js` bundle, PM2): Hono's official adapter. It writes each chunk of a streamed body as it
 * comes (SSE frames are not buffered) and aborts the request's signal when the client disconnects, so the upstream
 * fetch is cancelled as on Bun and Deno.
 */
async function serveNode(fetch: FetchHandler, options: { port: number; hostname: string }): Promise<Served> {
  const { serve: nodeServe } = await import("@hono/node-server");
  return new Promise((resolve, reject) => {
    const handler = (req: Request, env: { incoming?: { socket?: { remoteAddress?: string } } }) =>
      fetch(req, { remoteAddress: env?.incoming?.socket?.remoteAddress });
    const server = nodeServe({ fetch: handler, port: options.port, hostname: options.hostname }, (info) => {
      server.off("error", reject);
      resolve({
        port: info.port,
        hostname: options.hostname,
        stop: (force) =>
          new Promise<void>((done) => {
            server.close(() => done());
            if (force && "closeAllConnections" in server) server.closeAllConnections();
          }),
      });
    });
    server.once("error", reject);
  });
}

/** The command-line arguments after the script (or after the binary, for a compiled executable). */
export function readArgs(): string[] {
  if (runtimeName() === "deno") return [...Deno.args];
  const argv: string[] = (globalThis as any).process?.argv ?? [];
  // A Bun-compiled binary reports argv as [bun, script, ...args] too, so the rule is the same everywhere.
  return argv.slice(2);
}

/** Ends the process with `code` on any runtime. */
export function exit(code: number): never {
  if (runtimeName() === "deno") Deno.exit(code);
  (globalThis as any).process.exit(code);
  throw new Error("unreachable");
}

/** The process environment on any runtime. */
export function readEnv(): Record<string, string | undefined> {
  if (runtimeName() === "deno") return Deno.env.toObject();
  return (globalThis as any).process?.env ?? {};
}

/** Calls `handler` on a process signal (SIGHUP, SIGTERM, SIGINT) on any runtime; a no-op where signals do not exist. */
export function onSignal(signal: "SIGHUP" | "SIGTERM" | "SIGINT", handler: () => void): void {
  try {
    if (runtimeName() === "deno") Deno.addSignalListener(signal, handler);
    else (globalThis as any).process?.on?.(signal, handler);
  } catch {
    // Deno Deploy and Windows have no such signals.
  }
}
