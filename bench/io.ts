// The I/O-only gateway both benches compare against (bench/reference.ts serves it, bench/hot-path.ts runs it on
// fakes): only the requests and frames a gateway cannot avoid. Parse the JSON body; create, chat and delete upstream;
// each upstream read out as one chunk frame. No pool, validation, timeouts or log.
import { SSE_HEADERS } from "../lib/openai/sse.ts";
import { sign } from "../lib/upstream/emohaa.ts";
import { createHttp1Fetch, type Dial } from "../lib/upstream/http1.ts";

/** The part of fetch the handler uses. */
export type IoFetch = (
  url: string,
  init?: { method?: string; headers?: Record<string, string> },
) => Promise<{ text(): Promise<string>; arrayBuffer(): Promise<ArrayBuffer>; body: ReadableStream<Uint8Array> | null }>;

/** The project's upstream client (lib/upstream/http1.ts) over `dial`, shaped as IoFetch: every call allowed a retry. */
export function http1IoFetch(dial: Dial): IoFetch {
  const http1 = createHttp1Fetch(dial);
  return (url, init = {}) =>
    http1(url, { method: init.method ?? "GET", headers: init.headers ?? {}, idempotent: true });
}

const encoder = new TextEncoder();

/** The I/O-only handler, against the upstream at `upstream` (its base URL, `.../echo-prod`). */
export function ioHandler(upstream: string, fetch: IoFetch): (req: Request) => Promise<Response> {
  return async (req) => {
    const body = (await req.json()) as { messages: { content: string }[] };
    const token = req.headers.get("authorization")!.slice(7);
    const headers = () => {
      const s = sign(Date.now(), Math.random().toString());
      return { s, h: { Authorization: `Bearer ${token}`, "X-Xss-Id": s.id, "X-Xss-Ts": s.ts, "X-Xss-Real": s.real } };
    };
    const idText = await (await fetch(`${upstream}/generate/id?create=true`, { headers: headers().h })).text();
    const cid = idText.startsWith('"') ? JSON.parse(idText) : idText.startsWith("{") ? JSON.parse(idText).id : idText;
    const c = headers();
    const q = `token=${token}&cid=${cid}&prompt=${
      encodeURIComponent(`user:${body.messages[0]!.content}`)
    }&role=echo&xts=${c.s.ts}&xid=${c.s.id}&xreal=${c.s.real}`;
    const reader = (await fetch(`${upstream}/chat?${q}`, { headers: c.h })).body!.getReader();
    const decoder = new TextDecoder();
    const first = await reader.read();
    const frame = (bytes: Uint8Array | undefined) =>
      `data: {"delta":{"content":${JSON.stringify(decoder.decode(bytes, { stream: true }))}}}\n\n`;
    return new Response(
      new ReadableStream<Uint8Array>({
        async start(out) {
          out.enqueue(encoder.encode(`data: {"delta":{"role":"assistant"}}\n\n${frame(first.value)}`));
          for (let r = await reader.read(); !r.done; r = await reader.read()) {
            out.enqueue(encoder.encode(frame(r.value)));
          }
          out.enqueue(encoder.encode('data: {"finish_reason":"stop"}\n\ndata: [DONE]\n\n'));
          out.close();
          void fetch(`${upstream}/conv?cid=${cid}`, { method: "DELETE", headers: headers().h }).then((r) =>
            r.arrayBuffer()
          );
        },
      }),
      { headers: SSE_HEADERS },
    );
  };
}
