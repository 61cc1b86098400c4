// Two reference servers for `npm run bench`, to locate what a request costs (not ways to run the gateway):
//
//   bun bench/reference.ts io  PORT UPSTREAM   the gateway's I/O and nothing else: Bun.serve, fetch create / chat
//                                              / delete, SSE out; no validation, no pool, no timeouts, no logging
//   deno run -A bench/reference.ts io PORT UPSTREAM   the same on Deno: Deno.serve and Deno's fetch
//   bun bench/reference.ts lib PORT UPSTREAM   the gateway's own lib/ (pool, failover, watchdogs, translation,
//                                              streaming) behind a bare Bun.serve: all of server.ts but Hono, zod,
//                                              middleware and the access log
//
// REF_IO=own swaps the runtime's server and fetch for the project's own (lib/http/server.ts on the runtime's
// sockets, lib/upstream/http1.ts), with the io handler unchanged: what the project's I/O layers cost against the
// runtime's own. REF_IO=own with `lib` serves lib/ on the project's server and http1 client.
import { openReply } from "../lib/chat/reply.ts";
import { streamCompletion } from "../lib/chat/respond.ts";
import { buildPrompt } from "../lib/openai/prompt.ts";
import { SSE_HEADERS } from "../lib/openai/sse.ts";
import { Cutter } from "../lib/openai/translate.ts";
import { start } from "../lib/start.ts";
import { runtimeParts } from "../runtime/parts.ts";
import { dial } from "../runtime/dial.ts";
import { http1IoFetch, ioHandler } from "./io.ts";
import { serve } from "../runtime/serve.ts";

const [mode, port, upstream] = process.argv.slice(2) as ["io" | "lib", string, string];
const own = process.env.REF_IO === "own";
/** Only the I/O (bench/io.ts), with the runtime's fetch or the project's upstream client. */
const io = ioHandler(upstream, own ? http1IoFetch(dial) : globalThis.fetch);

/**
 * The gateway's lib as lib/start.ts wires it, with the defaults of lib/config.ts, without the HTTP framework
 * around it. Upstream calls use the global fetch as it is (no keep-alive rules), as every published measurement
 * of this reference did.
 */
async function lib(): Promise<(req: Request) => Promise<Response>> {
  const env = { EMOHAA_BASE_URL: upstream, UPSTREAM_CLIENT: own ? "http1" : "fetch", LOG_LEVEL: "silent" };
  const { chat, config } = await start(env, { ...runtimeParts(), fetch: globalThis.fetch });
  let n = 0;
  return async (req) => {
    const body = (await req.json()) as { messages: { role: string; content: string }[] };
    const { prompt } = buildPrompt(body.messages, config.promptMaxBytes);
    const head = { id: `chatcmpl-${++n}`, created: Math.floor(Date.now() / 1000), model: "emohaa" };
    const { reply, first } = await openReply(
      chat,
      [req.headers.get("authorization")!.slice(7)],
      prompt,
      req.signal,
      config.keepAliveMs,
    );
    const stream = streamCompletion({ head, reply, first, cutter: new Cutter({ stop: [] }), prompt }, {
      includeUsage: false,
      keepAliveMs: config.keepAliveMs,
    });
    return new Response(stream, { headers: SSE_HEADERS });
  };
}

const handler = mode === "io" ? io : await lib();
declare const Bun: any;
declare const Deno: any;
process.on("SIGINT", () => process.exit(0)); // so that --cpu-prof writes its profile
if (own) {
  await serve(handler, { port: Number(port), hostname: "127.0.0.1" });
  console.log(`reference server (${mode}, the project's own I/O) listening on http://127.0.0.1:${port}`);
} else if (typeof Bun !== "undefined") {
  const server = Bun.serve({ port: Number(port), hostname: "127.0.0.1", idleTimeout: 0, fetch: handler });
  console.log(`reference server (${mode}) listening on http://127.0.0.1:${server.port}`);
} else {
  Deno.serve({
    port: Number(port),
    hostname: "127.0.0.1",
    onListen: (a: { port: number }) =>
      console.log(`reference server (${mode}) listening on http://127.0.0.1:${a.port}`),
  }, handler);
}
