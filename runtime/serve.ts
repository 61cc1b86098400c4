// The one runtime-specific file: serve a fetch handler with Bun.serve or Deno.serve.

export type FetchHandler = (req: Request) => Response | Promise<Response>;

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

/** Serves `fetch` on `hostname:port`. */
export async function serve(fetch: FetchHandler, options: { port: number; hostname: string }): Promise<Served> {
  const runtime = runtimeName();
  if (runtime === "bun") {
    const Bun = (globalThis as any).Bun;
    // idleTimeout 0: streams may be silent between keep-alives for longer than Bun's 10 s default.
    const server = Bun.serve({ fetch, port: options.port, hostname: options.hostname, idleTimeout: 0 });
    return { port: server.port, hostname: options.hostname, stop: async (force) => void (await server.stop(force)) };
  }
  if (runtime === "deno") {
    const ac = new AbortController();
    let bound = options.port;
    const server = Deno.serve(
      { port: options.port, hostname: options.hostname, signal: ac.signal, onListen: (addr: { port: number }) => (bound = addr.port) },
      fetch,
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
  throw new Error("Cannot serve on this runtime: use Bun or Deno");
}

/** The process environment on any runtime. */
export function readEnv(): Record<string, string | undefined> {
  if (runtimeName() === "deno") return Deno.env.toObject();
  return (globalThis as any).process?.env ?? {};
}
