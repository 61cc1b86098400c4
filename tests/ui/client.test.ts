// ui/client.js and ui/i18n.js: the playground's logic without a browser.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

// Imported by URL: for the type checker "../../ui/*" are the text files the server embeds (lib/web/embedded.d.ts).
const ui = (file: string): Promise<any> => import(new URL(`../../ui/${file}`, import.meta.url).href);
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
const sse = (...frames: unknown[]) =>
  frames.map((f) => (typeof f === "string" ? f : `data: ${JSON.stringify(f)}\n\n`)).join("");
const chunk = (delta: object, finish: string | null = null) => ({
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta, finish_reason: finish }],
});

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

describe("checkToken", () => {
  const answer =
    (res: () => Response, seen: { url?: string; init?: RequestInit }[] = []) =>
    async (url: string, init: RequestInit) => {
      seen.push({ url, init });
      return res();
    };
  const json = (value: unknown, status = 200, headers = {}) =>
    new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json", ...headers } });

  it("posts the token with the page's bearer, as the chat sends it, and reads live or expired", async () => {
    const seen: { url?: string; init?: RequestInit }[] = [];
    const live = await client.checkToken("t1", {
      base: "/p/",
      bearer: ["t1", "t2"],
      fetchFn: answer(() => json({ live: true }), seen),
    });
    assert.deepEqual(live, { state: "live" });
    assert.equal(seen[0]!.url, "/p/token/check");
    assert.equal(seen[0]!.init!.method, "POST");
    assert.equal((seen[0]!.init!.headers as Record<string, string>).authorization, "Bearer t1,t2");
    assert.deepEqual(JSON.parse(String(seen[0]!.init!.body)), { token: "t1" });
    // A server that holds the tokens: the bearer is its gateway key.
    const gateway: { init?: RequestInit }[] = [];
    assert.deepEqual(
      await client.checkToken("gw-key", { bearer: ["gw-key"], fetchFn: answer(() => json({ live: false }), gateway) }),
      { state: "expired" },
    );
    assert.equal((gateway[0]!.init!.headers as Record<string, string>).authorization, "Bearer gw-key");
  });

  it("sends no Authorization header without a bearer", async () => {
    const seen: { init?: RequestInit }[] = [];
    await client.checkToken("t", { fetchFn: answer(() => json({ live: true }), seen) });
    assert.equal((seen[0]!.init!.headers as Record<string, string>).authorization, undefined);
  });

  it("says a 429 is a limit, with the server's retry-after, apart from a failed check", async () => {
    const limit = {
      error: {
        message: "Too many token checks from this address (1 per minute, bursts of 10); retry in 42 s",
        type: "rate_limit_error",
        param: null,
        code: "rate_limit_exceeded",
      },
    };
    assert.deepEqual(
      await client.checkToken("t", { fetchFn: answer(() => json(limit, 429, { "retry-after": "42" })) }),
      { state: "limited", retryAfter: 42 },
    );
    assert.deepEqual(await client.checkToken("t", { fetchFn: answer(() => json(limit, 429)) }), {
      state: "limited",
      retryAfter: null,
    });
    const wrongKey = {
      error: { message: "Invalid API key", type: "authentication_error", param: null, code: "invalid_api_key" },
    };
    assert.deepEqual(await client.checkToken("t", { fetchFn: answer(() => json(wrongKey, 401)) }), { state: "error" });
    assert.deepEqual(
      await client.checkToken("t", {
        fetchFn: answer(() => new Response("<html>Bad gateway</html>", { status: 502 })),
      }),
      { state: "error" },
    );
    const down = async () => {
      throw new TypeError("fetch failed");
    };
    assert.deepEqual(await client.checkToken("t", { fetchFn: down }), { state: "error" });
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
    const text = sse({ a: 1 }, ": ping\n\n", 'data: {"b":\r\n', "data: 2}\r\n\r\n", { c: "é" }, "data: [DONE]\n\n", {
      after: true,
    });
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

describe("sseData with eventsource-parser", () => {
  const read = async (...pieces: string[]) => {
    const out = [];
    for await (const v of client.sseData(body(...pieces))) out.push(v);
    return out;
  };

  it("reads CR-only line ends, a byte order mark, event and id fields, and an empty data field", async () => {
    assert.deepEqual(
      await read(
        '\uFEFFdata: {"a":1}\r\r',
        'event: message\nid: 7\ndata: {"b":2}\n\n',
        "data:\n\n",
        'data:{"c":3}\n\n',
      ),
      [{ a: 1 }, { b: 2 }, { c: 3 }],
    );
  });

  it("does not yield an event the stream cut before its blank line", async () => {
    assert.deepEqual(await read(sse({ a: 1 }), 'data: {"b":'), [{ a: 1 }]);
  });
});

describe("kept conversations (native multi-turn)", () => {
  it("streamChat returns the conversation handle and how the turn continued it", async () => {
    const res = new Response(body(sse(chunk({ content: "嗯" }), chunk({}, "stop"), "data: [DONE]\n\n")), {
      headers: { "x-emohaa-conversation": "conv-abc", "x-emohaa-continuation": "continued" },
    });
    const r = await client.streamChat({ tokens: ["t1"], body: {}, fetchFn: async () => res });
    assert.equal(r.conversation, "conv-abc");
    assert.equal(r.continuation, "continued");
  });

  it("endConversation sends DELETE with the bearer, and resolves whether the server ended it", async () => {
    const seen: { url?: string; init?: RequestInit }[] = [];
    const answer = (status: number) => async (url: string, init: RequestInit) => {
      seen.push({ url, init });
      return new Response("{}", { status });
    };
    assert.equal(
      await client.endConversation("conv-abc", { tokens: ["t1", "t2"], fetchFn: answer(200), base: "/" }),
      true,
    );
    assert.equal(seen[0]!.url, "/v1/conversations/conv-abc");
    assert.equal(seen[0]!.init!.method, "DELETE");
    assert.equal((seen[0]!.init!.headers as Record<string, string>).authorization, "Bearer t1,t2");
    assert.equal(await client.endConversation("conv-abc", { tokens: ["t1"], fetchFn: answer(404) }), false);
    const down = async () => {
      throw new TypeError("offline");
    };
    assert.equal(await client.endConversation("conv-abc", { tokens: ["t1"], fetchFn: down }), false);
  });
});

describe("streamChat", () => {
  const fakeFetch =
    (res: Response, seen: { url?: string; init?: RequestInit } = {}) => async (url: string, init: RequestInit) => {
      seen.url = url;
      seen.init = init;
      return res;
    };

  it("calls onDelta as pieces arrive and returns the reply, finish, usage and timings", async () => {
    let t = 1000;
    const now = () => (t += 10);
    const seen: { url?: string; init?: RequestInit } = {};
    const res = new Response(
      body(
        sse(
          chunk({ role: "assistant", content: "" }),
          chunk({ content: "你" }),
          chunk({ content: "好" }),
          chunk({}, "stop"),
          { choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } },
          "data: [DONE]\n\n",
        ),
      ),
      { headers: { "content-type": "text/event-stream" } },
    );
    const deltas: string[] = [];
    const r = await client.streamChat({
      tokens: ["t1", "t2"],
      body: { messages: [] },
      fetchFn: fakeFetch(res, seen),
      base: "/",
      now,
      onDelta: (p: string) => deltas.push(p),
    });
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
    const res = new Response(
      JSON.stringify({
        error: { message: "Missing bearer token", type: "authentication_error", param: null, code: "missing_token" },
      }),
      { status: 401 },
    );
    await assert.rejects(
      client.streamChat({ tokens: [], body: {}, fetchFn: fakeFetch(res, seen) }),
      (e: any) => e.kind === "missing",
    );
    assert.equal((seen.init!.headers as Record<string, string>).authorization, undefined);
  });

  it("turns error responses into ChatErrors with the server's message, code and retry-after", async () => {
    const error = (status: number, code: string, headers = {}) =>
      new Response(JSON.stringify({ error: { message: `m${status}`, type: "x", param: null, code } }), {
        status,
        headers,
      });
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
        assert.match(
          e.message,
          status === 502 && kind === "upstream" && !e.code ? /Bad gateway/ : new RegExp(`m${status}`),
        );
        return true;
      });
    }
  });

  it("fails on an error frame after the stream began, and on a stream that ends without a finish", async () => {
    const broken = new Response(
      body(
        sse(chunk({ content: "a" }), {
          error: { message: "Emohaa went silent", type: "timeout_error", param: null, code: "upstream_timeout" },
        }),
      ),
    );
    await assert.rejects(
      client.streamChat({ tokens: ["t"], body: {}, fetchFn: fakeFetch(broken) }),
      (e: any) => e.kind === "timeout" && e.message === "Emohaa went silent",
    );
    const cut = new Response(body(sse(chunk({ content: "a" }))));
    await assert.rejects(
      client.streamChat({ tokens: ["t"], body: {}, fetchFn: fakeFetch(cut) }),
      (e: any) => e.kind === "stream",
    );
  });

  it("reports a network failure as such, and rethrows an abort untouched", async () => {
    const down = async () => {
      throw new TypeError("fetch failed");
    };
    await assert.rejects(
      client.streamChat({ tokens: ["t"], body: {}, fetchFn: down }),
      (e: any) => e.kind === "network" && /fetch failed/.test(e.message),
    );
    const ac = new AbortController();
    ac.abort();
    const aborted = async () => {
      throw new DOMException("The operation was aborted", "AbortError");
    };
    await assert.rejects(
      client.streamChat({ tokens: ["t"], body: {}, fetchFn: aborted, signal: ac.signal }),
      (e: any) => e.name === "AbortError",
    );
  });
});

describe("fetchPoolStatus", () => {
  const status = {
    mode: "client",
    waiting: 2,
    tokens: [
      { label: "…3fa2", state: "healthy", inFlight: 1, coolingUntil: null, lastError: null },
      { label: "…09bc", state: "cooling", inFlight: 0, coolingUntil: "2030-01-01T00:10:00.000Z", lastError: "auth" },
    ],
  };
  const json = (value: unknown, status = 200) =>
    new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });

  it("asks /v1/tokens/status with the page's bearer and returns the status with the tokens asked about", async () => {
    const seen: { url?: string; init?: RequestInit } = {};
    const r = await client.fetchPoolStatus(["t1", "t2"], {
      base: "/prefix/",
      fetchFn: async (url: string, init: RequestInit) => {
        seen.url = url;
        seen.init = init;
        return json(status);
      },
    });
    assert.equal(seen.url, "/prefix/v1/tokens/status");
    assert.equal((seen.init!.headers as Record<string, string>).authorization, "Bearer t1,t2");
    assert.equal(seen.init!.method ?? "GET", "GET");
    assert.deepEqual(r, { kind: "ok", status, tokens: ["t1", "t2"] });
  });

  it("sends no Authorization header without tokens", async () => {
    let headers: Record<string, string> = {};
    await client.fetchPoolStatus([], {
      fetchFn: async (_url: string, init: RequestInit) => {
        headers = init.headers as Record<string, string>;
        return json(status);
      },
    });
    assert.equal(headers.authorization, undefined);
  });

  it("says the endpoint is absent on 404 (an older server)", async () => {
    const r = await client.fetchPoolStatus(["t"], {
      fetchFn: async () =>
        json({ error: { message: "Not found", type: "not_found_error", param: null, code: "not_found" } }, 404),
    });
    assert.deepEqual(r, { kind: "absent" });
    assert.deepEqual(
      await client.fetchPoolStatus(["t"], { fetchFn: async () => new Response("Not Found", { status: 404 }) }),
      { kind: "absent" },
    );
  });

  it("keeps the server's message, status and code for other errors", async () => {
    const message = "Invalid API key: this server holds the Emohaa tokens; send one of its API_KEYS as the bearer";
    const r = await client.fetchPoolStatus(["wrong"], {
      fetchFn: async () =>
        json({ error: { message, type: "authentication_error", param: null, code: "invalid_api_key" } }, 401),
    });
    assert.equal(r.kind, "error");
    assert.equal(r.error.message, message);
    assert.equal(r.error.status, 401);
    assert.equal(r.error.code, "invalid_api_key");
    assert.equal(r.error.kind, "auth");
    const proxy = await client.fetchPoolStatus(["t"], {
      fetchFn: async () => new Response("<html>Bad gateway</html>", { status: 502 }),
    });
    assert.equal(proxy.kind, "error");
    assert.match(proxy.error.message, /Bad gateway/);
  });

  it("reports a network failure and an answer that is not a pool status as errors, and rethrows an abort", async () => {
    const down = await client.fetchPoolStatus(["t"], {
      fetchFn: async () => {
        throw new TypeError("fetch failed");
      },
    });
    assert.equal(down.kind, "error");
    assert.equal(down.error.kind, "network");
    assert.match(down.error.message, /fetch failed/);
    for (
      const res of [
        new Response("<!doctype html><p>a page</p>"),
        json({ mode: "other", tokens: [] }),
        json({ mode: "client" }),
      ]
    ) {
      const r = await client.fetchPoolStatus(["t"], { fetchFn: async () => res });
      assert.equal(r.kind, "error");
      assert.match(r.error.message, /not a token pool status/);
    }
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(
      client.fetchPoolStatus(["t"], {
        signal: ac.signal,
        fetchFn: async () => {
          throw new DOMException("The operation was aborted", "AbortError");
        },
      }),
      (e: any) => e.name === "AbortError",
    );
  });

  it("names rows by the pasted tokens in client mode, by the server's label alone in server mode", () => {
    const tokens = ["live-check-token-1", "expired-check-token-1"];
    const rows = client.poolRows({ kind: "ok", status, tokens });
    assert.deepEqual(
      rows.map((r: any) => [r.name, r.label, r.state, r.inFlight, r.coolingUntil, r.lastError]),
      [
        ["live-c…en-1", "…3fa2", "healthy", 1, null, null],
        ["expire…en-1", "…09bc", "cooling", 0, "2030-01-01T00:10:00.000Z", "auth"],
      ],
    );
    assert.deepEqual(
      rows.map((r: any) => r.key),
      ["…3fa2", "…09bc"],
    );
    const server = client.poolRows({ kind: "ok", status: { ...status, mode: "server" }, tokens: ["gateway-key-1"] });
    assert.deepEqual(
      server.map((r: any) => [r.name, r.label]),
      [
        [null, "…3fa2"],
        [null, "…09bc"],
      ],
    );
    // The gateway key is never shown as if it were one of the pool's tokens.
    assert.ok(!JSON.stringify(server).includes("gateway"));
  });
});

describe("poolRows keys", () => {
  const row = (label: string) => ({ label, state: "healthy", inFlight: 0, coolingUntil: null, lastError: null });
  const keys = (labels: string[]) =>
    client.poolRows({ kind: "ok", status: { mode: "server", waiting: 0, tokens: labels.map(row) } }).map((r: any) =>
      r.key
    );

  it("keys a row by its label, so a row keeps its key when one before it goes", () => {
    assert.deepEqual(keys(["…aaaa", "…bbbb", "…cccc"]), ["…aaaa", "…bbbb", "…cccc"]);
    assert.deepEqual(keys(["…bbbb", "…cccc"]), ["…bbbb", "…cccc"]);
  });

  it("tells apart two tokens whose labels are alike", () => {
    assert.deepEqual(keys(["…aaaa", "…bbbb", "…aaaa"]), ["…aaaa", "…bbbb", "…aaaa#2"]);
  });
});

describe("poolPollDue and formatClock", () => {
  it("polls only while the page is visible, and never sooner than POOL_POLL_MS", () => {
    assert.ok(client.POOL_POLL_MS >= 10_000);
    const lastAt = 1_000_000;
    assert.equal(client.poolPollDue({ hidden: false, now: lastAt + client.POOL_POLL_MS, lastAt }), true);
    assert.equal(client.poolPollDue({ hidden: false, now: lastAt + client.POOL_POLL_MS - 1, lastAt }), false);
    assert.equal(client.poolPollDue({ hidden: false, now: lastAt + 9_999, lastAt }), false);
    assert.equal(client.poolPollDue({ hidden: true, now: lastAt + 10 * client.POOL_POLL_MS, lastAt }), false);
  });

  it("shows a time of day as HH:MM:SS in local time", () => {
    assert.equal(client.formatClock(new Date(2024, 0, 2, 3, 4, 5).toISOString()), "03:04:05");
    assert.equal(client.formatClock(new Date(2024, 0, 2, 23, 59, 9)), "23:59:09");
    assert.equal(client.formatClock(null), "");
    assert.equal(client.formatClock("not a date"), "");
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
