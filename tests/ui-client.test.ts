// ui/client.js and ui/i18n.js: the playground's logic without a browser.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

// Imported by URL: for the type checker "../ui/*" are the text files the server embeds (lib/embedded.d.ts).
const ui = (file: string): Promise<any> => import(new URL(`../ui/${file}`, import.meta.url).href);
const client = await ui("client.js");
const i18n = await ui("i18n.js");

const encoder = new TextEncoder();
/** A body that arrives in the given pieces, as a network would cut it. */
const body = (...pieces: string[]) =>
  new ReadableStream<Uint8Array>({
    start(c) {
      for (const p of pieces) c.enqueue(encoder.encode(p));
      c.close();
    },
  });
const sse = (...frames: unknown[]) => frames.map((f) => (typeof f === "string" ? f : `data: ${JSON.stringify(f)}\n\n`)).join("");
const chunk = (delta: object, finish: string | null = null) => ({ object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finish }] });

describe("parseTokens and maskToken", () => {
  it("splits on commas, spaces and new lines, without duplicates", () => {
    assert.deepEqual(client.parseTokens(" a,b\n\nc  a ,\r\nd "), ["a", "b", "c", "d"]);
    assert.deepEqual(client.parseTokens(""), []);
  });
  it("shows enough of a token to tell it apart, never the whole token", () => {
    assert.equal(client.maskToken("eyJhbGciOiJIUzUxMiJ9.payload.sig"), "eyJhbG….sig");
    assert.equal(client.maskToken("short"), "sho…");
  });
});

describe("chatBody", () => {
  it("asks for a stream with the usage chunk, the system message first when there is one", () => {
    const messages = [{ role: "user", content: "hi" }];
    assert.deepEqual(client.chatBody(messages, "  Be brief. "), {
      model: "emohaa",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "system", content: "Be brief." }, ...messages],
    });
    assert.deepEqual(client.chatBody(messages, "   ").messages, messages);
  });
});

describe("sseData", () => {
  it("yields data values across split reads, CRLF frames and keep-alive comments, and stops at [DONE]", async () => {
    const text = sse({ a: 1 }, ": ping\n\n", "data: {\"b\":\r\n", "data: 2}\r\n\r\n", { c: "é" }, "data: [DONE]\n\n", { after: true });
    const bytes = encoder.encode(text);
    const cut = [5, 17, 30, 44, bytes.length - 3];
    const parts: Uint8Array[] = [];
    let last = 0;
    for (const at of cut) {
      parts.push(bytes.slice(last, at));
      last = at;
    }
    parts.push(bytes.slice(last));
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (const p of parts) c.enqueue(p);
        c.close();
      },
    });
    const out = [];
    for await (const v of client.sseData(stream)) out.push(v);
    assert.deepEqual(out, [{ a: 1 }, { b: 2 }, { c: "é" }]);
  });
});

describe("streamChat", () => {
  const fakeFetch = (res: Response, seen: { url?: string; init?: RequestInit } = {}) => async (url: string, init: RequestInit) => {
    seen.url = url;
    seen.init = init;
    return res;
  };

  it("calls onDelta as pieces arrive and returns the reply, finish, usage and timings", async () => {
    let t = 1000;
    const now = () => (t += 10);
    const seen: { url?: string; init?: RequestInit } = {};
    const res = new Response(
      body(sse(chunk({ role: "assistant", content: "" }), chunk({ content: "你" }), chunk({ content: "好" }), chunk({}, "stop"), { choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } }, "data: [DONE]\n\n")),
      { headers: { "content-type": "text/event-stream" } },
    );
    const deltas: string[] = [];
    const r = await client.streamChat({ tokens: ["t1", "t2"], body: { messages: [] }, fetchFn: fakeFetch(res, seen), base: "/", now, onDelta: (p: string) => deltas.push(p) });
    assert.deepEqual(deltas, ["你", "好"]);
    assert.equal(r.content, "你好");
    assert.equal(r.finish, "stop");
    assert.deepEqual(r.usage, { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
    assert.equal(r.ttftMs, 10);
    assert.equal(r.totalMs, 20);
    assert.equal(seen.url, "/v1/chat/completions");
    assert.equal((seen.init!.headers as Record<string, string>).authorization, "Bearer t1,t2");
  });

  it("sends no Authorization header without tokens", async () => {
    const seen: { init?: RequestInit } = {};
    const res = new Response(JSON.stringify({ error: { message: "Missing bearer token", type: "authentication_error", param: null, code: "missing_token" } }), { status: 401 });
    await assert.rejects(client.streamChat({ tokens: [], body: {}, fetchFn: fakeFetch(res, seen) }), (e: any) => e.kind === "missing");
    assert.equal((seen.init!.headers as Record<string, string>).authorization, undefined);
  });

  it("turns error responses into ChatErrors with the server's message, code and retry-after", async () => {
    const error = (status: number, code: string, headers = {}) =>
      new Response(JSON.stringify({ error: { message: `m${status}`, type: "x", param: null, code } }), { status, headers });
    const cases: [Response, string][] = [
      [error(401, "invalid_token"), "auth"],
      [error(429, "rate_limit_exceeded", { "retry-after": "7" }), "rate"],
      [error(429, "account_busy"), "busy"],
      [error(502, "upstream_unreachable"), "upstream"],
      [error(504, "upstream_timeout"), "timeout"],
      [error(400, "invalid_request"), "invalid"],
      [new Response("<html>Bad gateway</html>", { status: 502 }), "upstream"],
    ];
    for (const [res, kind] of cases) {
      const status = res.status;
      await assert.rejects(client.streamChat({ tokens: ["t"], body: {}, fetchFn: fakeFetch(res) }), (e: any) => {
        assert.equal(e.name, "ChatError");
        assert.equal(e.kind, kind, `${status}`);
        assert.equal(e.status, status);
        if (kind === "rate") assert.equal(e.retryAfter, 7);
        assert.match(e.message, status === 502 && kind === "upstream" && !e.code ? /Bad gateway/ : new RegExp(`m${status}`));
        return true;
      });
    }
  });

  it("fails on an error frame after the stream began, and on a stream that ends without a finish", async () => {
    const broken = new Response(body(sse(chunk({ content: "a" }), { error: { message: "Emohaa went silent", type: "timeout_error", param: null, code: "upstream_timeout" } })));
    await assert.rejects(client.streamChat({ tokens: ["t"], body: {}, fetchFn: fakeFetch(broken) }), (e: any) => e.kind === "timeout" && e.message === "Emohaa went silent");
    const cut = new Response(body(sse(chunk({ content: "a" }))));
    await assert.rejects(client.streamChat({ tokens: ["t"], body: {}, fetchFn: fakeFetch(cut) }), (e: any) => e.kind === "stream");
  });

  it("reports a network failure as such, and rethrows an abort untouched", async () => {
    const down = async () => {
      throw new TypeError("fetch failed");
    };
    await assert.rejects(client.streamChat({ tokens: ["t"], body: {}, fetchFn: down }), (e: any) => e.kind === "network" && /fetch failed/.test(e.message));
    const ac = new AbortController();
    ac.abort();
    const aborted = async () => {
      throw new DOMException("The operation was aborted", "AbortError");
    };
    await assert.rejects(client.streamChat({ tokens: ["t"], body: {}, fetchFn: aborted, signal: ac.signal }), (e: any) => e.name === "AbortError");
  });
});

describe("curlCommand", () => {
  it("repeats the request in a shell without the tokens, quoting any text safely", () => {
    const payload = { messages: [{ role: "user", content: `it's "quoted" $HOME \`x\` \\ 你好\nline` }] };
    const cmd = client.curlCommand("http://127.0.0.1:8000/v1/chat/completions", payload);
    assert.match(cmd, /^curl -N 'http:\/\/127\.0\.0\.1:8000\/v1\/chat\/completions' \\\n/);
    assert.match(cmd, /-H "Authorization: Bearer \$EMOHAA_TOKENS"/);
    // Let a real shell read the -d argument back.
    const arg = cmd.slice(cmd.indexOf("-d ") + 3);
    const r = spawnSync("sh", ["-c", `printf '%s' ${arg}`], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), payload);
  });
});

describe("formatMs", () => {
  it("shows milliseconds below a second and seconds above", () => {
    assert.equal(client.formatMs(42.4), "42 ms");
    assert.equal(client.formatMs(2345), "2.3 s");
  });
});

describe("i18n", () => {
  it("picks Chinese when the browser lists it before English", () => {
    assert.equal(i18n.pickLanguage(["zh-CN", "en"]), "zh");
    assert.equal(i18n.pickLanguage(["zh-TW"]), "zh");
    assert.equal(i18n.pickLanguage(["en-US", "zh-CN"]), "en");
    assert.equal(i18n.pickLanguage(["fr-FR", "zh"]), "zh");
    assert.equal(i18n.pickLanguage([]), "en");
  });
  it("has every text in both languages, with the same placeholders", () => {
    const { en, zh } = i18n.TEXT;
    assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
    const holes = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort();
    for (const k of Object.keys(en)) assert.deepEqual(holes(zh[k]), holes(en[k]), k);
  });
  it("fills placeholders", () => {
    assert.equal(i18n.translator("en")("ttft", { ms: "12 ms" }), "first token 12 ms");
    assert.equal(i18n.translator("zh")("retryAfter", { s: 7 }), "请在 7 秒后重试。");
  });
});
