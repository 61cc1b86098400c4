// The load generator: N clients in one Bun process, talking to the simulator directly (the bound) or to the gateway.
//
// `bun bench/load.ts '<job json>'` prints one JSON line of results, with the CPU time the process used (all
// threads): it runs on its own, so that figure is its own, and shows whether it could be the bottleneck.
// Per request it does as little as it can: its own HTTP/1.1 client (bench/http.ts) instead of fetch, no JSON
// parsing of frames, no text decoding of streams; it only looks for the first content piece (for time to first
// piece), counts pieces, and checks the stream's last bytes for its end.
import { sign } from "../lib/upstream/emohaa.ts";
import { Pool } from "./http.ts";

/** What to run; see bench/run.ts. */
export interface Job {
  /** `direct`: create, chat, delete against the simulator. `gateway`: one streamed chat completion. */
  mode: "direct" | "gateway";
  /** The simulator's base URL (`.../echo-prod`) or the gateway's origin. */
  url: string;
  clients: number;
  /** Client i uses token `${tokenPrefix}${i}`: the simulator allows one stream per account. */
  tokenPrefix: string;
  prompt: string;
  /** Run for this long (each client loops) ... */
  durationMs?: number;
  /** ... or this many requests per client. */
  requests?: number;
  /** `raw` (default): bench/http.ts. `fetch`: the runtime's fetch, to compare the generator's own cost. */
  client?: "raw" | "fetch";
}

export interface LoadResult {
  requests: number;
  errors: number;
  /** Up to five distinct error messages. */
  errorSamples: string[];
  elapsedMs: number;
  /** Time to the first content piece, per request, ms. */
  ttfp: number[];
  /** Time to the end of the stream, per request, ms. */
  total: number[];
  /** Reply pieces delivered over all requests, however they were framed (a check that nothing was lost). */
  pieces: number;
  /** CPU time this process used while running the job (all threads), ms. */
  cpuMs: number;
}

const ORIGIN = "https://echo.turing-world.com";
const BROWSER = `accept-language: zh-CN,zh;q=0.9,en;q=0.8\r\norigin: ${ORIGIN}\r\nreferer: ${ORIGIN}/\r\n` +
  "user-agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n";

/** Headers of a signed upstream call, as the gateway sends them (the simulator checks the signature). */
function signed(token: string, accept = "application/json, text/plain, */*") {
  const s = sign(Date.now(), Math.random().toString());
  return {
    s,
    headers:
      `authorization: Bearer ${token}\r\naccept: ${accept}\r\n${BROWSER}x-xss-id: ${s.id}\r\nx-xss-ts: ${s.ts}\r\nx-xss-real: ${s.real}\r\n`,
  };
}

const CONTENT = new TextEncoder().encode('"delta":{"content":');
/** The simulator's `[[pieces:N]]` replies are `片0`, `片1`...: one 片 per piece, however they are framed. */
const PIECE = new TextEncoder().encode("片");
const DATA = new TextEncoder().encode("data: ");
const DONE = new TextEncoder().encode("data: [DONE]\n\n");

/** Occurrences of `needle` in `hay` (byte search; frames are ASCII around their JSON). */
function count(hay: Uint8Array, needle: Uint8Array): number {
  let n = 0;
  const first = needle[0]!;
  outer: for (let i = hay.indexOf(first); i >= 0 && i <= hay.length - needle.length; i = hay.indexOf(first, i + 1)) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    n++;
  }
  return n;
}

/**
 * Watches an event stream go by: the time of the first content piece, the pieces delivered, and whether it
 * ended with `[DONE]`. A marker split across two reads is found in the joined tail.
 */
class StreamWatch {
  ttfp = NaN;
  pieces = 0;
  private tail = new Uint8Array(0);
  constructor(
    private readonly marker: Uint8Array,
    private readonly t0: number,
  ) {}

  data = (chunk: Uint8Array): void => {
    if (Number.isNaN(this.ttfp)) {
      const m = this.marker;
      const joined = this.tail.length ? concat(this.tail.subarray(-(m.length - 1)), chunk) : chunk;
      if (count(joined, m)) this.ttfp = performance.now() - this.t0;
    }
    this.pieces += count(chunk, PIECE);
    if (this.tail.length) {
      this.pieces += count(concat(this.tail.subarray(-(PIECE.length - 1)), chunk.subarray(0, PIECE.length - 1)), PIECE);
    }
    this.tail = chunk.length >= DONE.length
      ? chunk.slice(chunk.length - DONE.length)
      : concat(this.tail, chunk).slice(-DONE.length);
  };

  check(): void {
    if (!endsWith(this.tail, DONE)) {
      throw new Error(`stream ended without [DONE]: ${new TextDecoder().decode(this.tail)}`);
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function endsWith(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length < b.length) return false;
  for (let i = 0; i < b.length; i++) if (a[a.length - b.length + i] !== b[i]) return false;
  return true;
}

/** Reads a conversation id from the simulator's three body forms. */
function conversationId(body: string): string {
  const v = JSON.parse(body.startsWith('"') || body.startsWith("{") ? body : JSON.stringify(body));
  return typeof v === "string" ? v : v.id;
}

const utf8 = new TextDecoder();

/** A request whose status must be 2xx; returns the body as text. */
async function text(pool: Pool, method: string, path: string, headers: string): Promise<string> {
  let status = 0;
  let body = "";
  await pool.request(method, path, headers, undefined, {
    head: (s) => (status = s),
    data: (b) => (body += utf8.decode(b)),
  });
  if (status < 200 || status >= 300) {
    throw new Error(`${method} ${path.split("?")[0]} ${status}: ${body.slice(0, 200)}`);
  }
  return body;
}

/** One direct request: create, chat (streamed to the end), delete (in the background, as the gateway does). */
async function direct(
  pool: Pool,
  base: string,
  job: Job,
  token: string,
  deletes: Promise<unknown>[],
): Promise<{ ttfp: number; pieces: number }> {
  const t0 = performance.now();
  const cid = conversationId(await text(pool, "GET", `${base}/generate/id?create=true`, signed(token).headers));
  const h = signed(token, "text/event-stream");
  const q = `token=${encodeURIComponent(token)}&cid=${encodeURIComponent(cid)}&prompt=${
    encodeURIComponent(job.prompt)
  }&role=echo&xts=${h.s.ts}&xid=${h.s.id}&xreal=${h.s.real}`;
  const watch = new StreamWatch(DATA, t0);
  let status = 0;
  try {
    await pool.request("GET", `${base}/chat?${q}`, h.headers, undefined, {
      head: (s) => (status = s),
      data: watch.data,
    });
    if (status !== 200) throw new Error(`chat ${status}`);
    watch.check();
    return { ttfp: watch.ttfp, pieces: watch.pieces };
  } finally {
    // Deletion after the reply, not awaited before the next request: the same as the gateway does.
    deletes.push(text(pool, "DELETE", `${base}/conv?cid=${encodeURIComponent(cid)}`, signed(token).headers));
  }
}

/** One request through the gateway: a streamed chat completion. */
async function gateway(pool: Pool, token: string, body: string): Promise<{ ttfp: number; pieces: number }> {
  const t0 = performance.now();
  const watch = new StreamWatch(CONTENT, t0);
  let status = 0;
  let error = "";
  await pool.request(
    "POST",
    "/v1/chat/completions",
    `content-type: application/json\r\nauthorization: Bearer ${token}\r\n`,
    body,
    {
      head: (s) => (status = s),
      data: (b) => (status === 200 ? watch.data(b) : (error += utf8.decode(b))),
    },
  );
  if (status !== 200) throw new Error(`gateway ${status}: ${error.slice(0, 200)}`);
  watch.check();
  return { ttfp: watch.ttfp, pieces: watch.pieces };
}

/** The same two requests with fetch (`client: "fetch"`): heavier, kept to show what the raw client saves. */
const viaFetch = {
  async direct(
    base: string,
    job: Job,
    token: string,
    deletes: Promise<unknown>[],
  ): Promise<{ ttfp: number; pieces: number }> {
    const t0 = performance.now();
    const hs = (h: string) =>
      Object.fromEntries(h.trim().split("\r\n").map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)]));
    const created = await fetch(`${base}/generate/id?create=true`, { headers: hs(signed(token).headers) });
    if (!created.ok) throw new Error(`create ${created.status}`);
    const cid = conversationId(await created.text());
    const h = signed(token, "text/event-stream");
    const q = `token=${encodeURIComponent(token)}&cid=${encodeURIComponent(cid)}&prompt=${
      encodeURIComponent(job.prompt)
    }&role=echo&xts=${h.s.ts}&xid=${h.s.id}&xreal=${h.s.real}`;
    const res = await fetch(`${base}/chat?${q}`, { headers: hs(h.headers) });
    const watch = new StreamWatch(DATA, t0);
    try {
      if (!res.ok || !res.body) throw new Error(`chat ${res.status}`);
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) watch.data(chunk);
      watch.check();
      return { ttfp: watch.ttfp, pieces: watch.pieces };
    } finally {
      deletes.push(
        fetch(`${base}/conv?cid=${encodeURIComponent(cid)}`, { method: "DELETE", headers: hs(signed(token).headers) })
          .then((r) => r.arrayBuffer()),
      );
    }
  },
  async gateway(url: string, token: string, body: string): Promise<{ ttfp: number; pieces: number }> {
    const t0 = performance.now();
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body,
    });
    if (!res.ok || !res.body) throw new Error(`gateway ${res.status}: ${(await res.text()).slice(0, 200)}`);
    const watch = new StreamWatch(CONTENT, t0);
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) watch.data(chunk);
    watch.check();
    return { ttfp: watch.ttfp, pieces: watch.pieces };
  },
};

/** Runs a job and returns its numbers. */
export async function runJob(job: Job): Promise<LoadResult> {
  const result: LoadResult = {
    requests: 0,
    errors: 0,
    errorSamples: [],
    elapsedMs: 0,
    ttfp: [],
    total: [],
    pieces: 0,
    cpuMs: 0,
  };
  const cpu0 = process.cpuUsage();
  const deletes: Promise<unknown>[] = [];
  const body = JSON.stringify({ model: "emohaa", stream: true, messages: [{ role: "user", content: job.prompt }] });
  const fail = (err: unknown) => {
    result.errors++;
    const m = err instanceof Error ? err.message : String(err);
    if (result.errorSamples.length < 5 && !result.errorSamples.includes(m)) result.errorSamples.push(m);
  };
  const url = new URL(job.url);
  const pool = new Pool(url.hostname, Number(url.port));
  const base = url.pathname.replace(/\/+$/, "");
  const start = performance.now();
  const until = job.durationMs ? start + job.durationMs : Infinity;
  const client = async (i: number) => {
    const token = `${job.tokenPrefix}${i}`;
    for (let n = 0; job.requests ? n < job.requests : performance.now() < until; n++) {
      const t0 = performance.now();
      try {
        const r = job.client === "fetch"
          ? job.mode === "direct"
            ? await viaFetch.direct(job.url, job, token, deletes)
            : await viaFetch.gateway(job.url, token, body)
          : job.mode === "direct"
          ? await direct(pool, base, job, token, deletes)
          : await gateway(pool, token, body);
        result.total.push(performance.now() - t0);
        result.ttfp.push(r.ttfp);
        result.pieces += r.pieces;
        result.requests++;
      } catch (err) {
        fail(err);
      }
    }
  };
  await Promise.all(Array.from({ length: job.clients }, (_, i) => client(i + 1)));
  result.elapsedMs = performance.now() - start;
  for (const r of await Promise.allSettled(deletes)) if (r.status === "rejected") fail(r.reason);
  pool.close();
  const cpu = process.cpuUsage(cpu0);
  result.cpuMs = (cpu.user + cpu.system) / 1000;
  return result;
}

if (import.meta.main) {
  const job = JSON.parse(process.argv[2]!) as Job;
  console.log(JSON.stringify(await runJob(job)));
}
