// The gateway's own CPU per streamed completion, without the kernel: `bun bench/hot-path.ts` (or `deno run -A`).
//
// Everything server.ts runs per request (lib/http/server.ts parsing the client's bytes, the edge, the turn, the
// upstream client's three calls, translation, the frames written back) runs in this one process, but no socket is
// opened: the client's connections are fed to the server as bytes, and the upstream client's dialer answers create,
// chat (10 pieces, one write) and delete from memory, a turn of the event loop later. What is left is the work in
// JavaScript and the runtime's objects, free of the machine's noise (the load, the simulator, the kernel's sockets):
// a change to the hot path shows here as a few per cent, where `npm run bench` needs many rounds to see it.
//
//   bun bench/hot-path.ts [--requests 20000] [--clients 20] [--rounds 5] [--reference]
//   npm run bench:alloc        (deno, --alloc: bytes allocated per completion instead of CPU)
//
// `--reference` measures the same bytes through the least a gateway can do on the same two fakes (bench/io.ts, the
// handler `npm run bench`'s I/O-only reference serves, on lib/http/server.ts and http1): the floor this bench can show.
//
// `--alloc` counts bytes instead of time: the JavaScript heap's growth per completion, under Deno with a young
// generation too large to be collected during a round and a full collection before each (`npm run bench:alloc`
// passes the V8 flags). Unlike CPU time it does not move with the machine's load: the same code gives the same
// count within about 1 %, so a change of a few hundred bytes shows.
import { createHttpServer, type Handler } from "../lib/http/server.ts";
import { start } from "../lib/start.ts";
import type { Dial, WireEvents } from "../lib/upstream/http1.ts";
import { http1IoFetch, ioHandler } from "./io.ts";
import { runtimeParts } from "../runtime/parts.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const REQUESTS = option("requests", 20_000);
const CLIENTS = option("clients", 20);
const ROUNDS = option("rounds", 5);
const reference = args.includes("--reference");
const alloc = args.includes("--alloc");

declare const Deno: { memoryUsage(): { heapUsed: number } } | undefined;
const gc = (globalThis as { gc?: () => void }).gc;
if (alloc && (typeof Deno === "undefined" || !gc)) {
  console.error("--alloc needs Deno with V8's gc exposed and a large young generation: npm run bench:alloc");
  process.exit(2);
}

const enc = new TextEncoder();
const latin1 = new TextDecoder("latin1");
/** A turn of the event loop, as a socket's next read would be. */
const later = (f: () => void) => setTimeout(f, 0);

const PIECES = 10;
const sse = Array.from({ length: PIECES }, (_, i) => `data: 片${i}\n\n`).join("") + "data: [DONE]\n\n";
const sseBytes = enc.encode(sse).length;
const CHAT = enc.encode(
  `HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n` +
    `transfer-encoding: chunked\r\n\r\n${sseBytes.toString(16)}\r\n${sse}\r\n0\r\n\r\n`,
);
const small = (body: string, type: string) =>
  enc.encode(`HTTP/1.1 200 OK\r\ncontent-type: ${type}\r\ncontent-length: ${enc.encode(body).length}\r\n\r\n${body}`);
const DELETED = small('{"status":200,"title":"OK"}', "application/json");
let seq = 0;

/** The upstream, in memory: answers each request a turn later, on a kept-alive connection. */
const fakeDial: Dial = async (_target, events: WireEvents) => ({
  write(bytes: Uint8Array) {
    const line = latin1.decode(bytes.subarray(0, 40));
    const answer = line.includes("/generate/id")
      ? small(JSON.stringify(`conv-${++seq}`), "application/json")
      : line.startsWith("DELETE")
      ? DELETED
      : CHAT;
    later(() => events.data(answer));
  },
  end() {},
});

const body = JSON.stringify({ model: "emohaa", stream: true, messages: [{ role: "user", content: "[[pieces:10]]" }] });

/** One client: a kept-alive connection to the server, one streamed completion after another. */
function client(server: ReturnType<typeof createHttpServer>, id: number, requests: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = 0;
    let received = "";
    const request = enc.encode(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer live-${id}\r\n` +
        `content-type: application/json\r\ncontent-length: ${enc.encode(body).length}\r\n\r\n${body}`,
    );
    const events = server.accept({
      write(bytes) {
        received += latin1.decode(bytes);
        // The answer ends with the [DONE] frame: sent whole (with a Content-Length), or chunked (then a last chunk).
        if (received.endsWith("[DONE]\n\n") || (received.endsWith("\r\n0\r\n\r\n") && received.includes("[DONE]"))) {
          if (!received.startsWith("HTTP/1.1 200")) reject(new Error(received.slice(0, 300)));
          received = "";
          if (++done === requests) return resolve(done), true;
          later(() => events.data(request));
        }
        return true;
      },
      end() {
        reject(new Error(`connection ${id} closed after ${done} requests: ${received.slice(0, 3000)}`));
      },
      pause() {},
      resume() {},
      remoteAddress: "127.0.0.1",
    });
    later(() => events.data(request));
  });
}

async function main() {
  let handler: Handler;
  // bench/io.ts's handler, on the same fakes: the least work a gateway can do.
  if (reference) handler = ioHandler("http://upstream.invalid/echo-prod", http1IoFetch(fakeDial));
  else {
    const env = {
      EMOHAA_BASE_URL: "http://upstream.invalid/echo-prod",
      CONTINUE_CONVERSATIONS: "false",
      LOG_LEVEL: "info",
      API_KEYS: "",
    };
    const parts = { ...runtimeParts(), dial: fakeDial, writeLog: () => {} };
    const gateway = await start(env, parts);
    handler = gateway.app.fetch as Handler;
  }
  const server = createHttpServer(handler, {
    headerTimeoutMs: 10_000,
    bodyTimeoutMs: 10_000,
    idleTimeoutMs: 60_000,
    maxConnections: 10_000,
    defaultHost: "127.0.0.1",
    onError: (m) => console.error(m),
  });
  const run = async (requests: number) => {
    const per = Math.ceil(requests / CLIENTS);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const counts = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(server, i, per)));
    const n = counts.reduce((a, b) => a + b, 0);
    const cpu = process.cpuUsage(cpu0);
    return { n, cpuUs: (cpu.user + cpu.system) / n, wallUs: ((performance.now() - t0) * 1000) / n };
  };
  await run(Math.min(REQUESTS, 5000)); // warm-up: the JIT's tiers
  const results = [];
  for (let r = 0; r < ROUNDS; r++) {
    gc?.();
    const heap0 = alloc ? Deno!.memoryUsage().heapUsed : 0;
    const result = await run(REQUESTS);
    const bytes = alloc ? (Deno!.memoryUsage().heapUsed - heap0) / result.n : 0;
    results.push({ ...result, bytes });
  }
  const figures = results.map((r) => (alloc ? r.bytes : r.cpuUs)).sort((a, b) => a - b);
  console.log(
    `${reference ? "reference (the I/O alone)" : "gateway"}: ${figures[figures.length >> 1]!.toFixed(alloc ? 0 : 1)} ${
      alloc ? "bytes allocated" : "µs of CPU"
    } per streamed completion (median of ${ROUNDS} rounds of ${REQUESTS}; rounds ${
      figures.map((c) => c.toFixed(0)).join(", ")
    })`,
  );
  process.exit(0);
}

await main();
