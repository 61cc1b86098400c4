import { describe, it } from "node:test";
import { UPSTREAM_LIMITS } from "../../lib/config.ts";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createEmohaaClient, parseConversationId, sign } from "../../lib/upstream/emohaa.ts";
import { UpstreamError } from "../../lib/upstream/errors.ts";
import type { PieceReader } from "../../lib/upstream/events.ts";
import { createHttp1Fetch, type Dial, type FetchInit, type WireEvents } from "../../lib/upstream/http1.ts";
import { createSimulator } from "../../sim/simulator.ts";
import { simFetch } from "../support/sim.ts";

/** A fetch that records requests and answers with the given response factory. */
function fakeFetch(answer: (url: URL, init: RequestInit) => Response) {
  const calls: { url: URL; init: RequestInit }[] = [];
  const f = (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input));
    calls.push({ url, init });
    return answer(url, init);
  }) as typeof fetch;
  return { f, calls };
}

/** A response whose body arrives in the given byte chunks. */
function chunked(chunks: Uint8Array[], type = "text/event-stream") {
  return new Response(
    new ReadableStream({
      start(c) {
        for (const x of chunks) c.enqueue(x);
        c.close();
      },
    }),
    { headers: { "content-type": type } },
  );
}

/** Every piece of a reply, in order. */
async function readAll(r: PieceReader) {
  const out: string[] = [];
  for (let batch = await r.read(); batch; batch = await r.read()) out.push(...batch);
  return out;
}

describe("sign", () => {
  it("is md5 of `${ts}-_-${id}` in lowercase hex", () => {
    const s = sign(1700000000000, "0.123");
    assert.equal(s.ts, "1700000000000");
    assert.equal(s.real, createHash("md5").update("1700000000000-_-0.123").digest("hex"));
    assert.match(s.real, /^[0-9a-f]{32}$/);
  });
  it("matches fixed vectors computed outside the project (md5sum of `ts-_-id`)", () => {
    // `echo -n "1700000000000-_-0.123" | md5sum`: the simulator checks signatures with sign() too, so only vectors
    // made by another tool can catch a wrong formula.
    assert.equal(sign(1700000000000, "0.123").real, "1151ed01231a91e95bd9c108ac381da1");
    assert.equal(sign(1712345678901, "0.8412735913049321").real, "9cf5512d7cdcbe50ea63b6ecab02d300");
  });
});

describe("createEmohaaClient with a transport that keeps deadlines", () => {
  it("passes create's and delete's time limits down and lets their TimeoutError through (no signal, no timer here)", async () => {
    const seen: (string | undefined)[] = [];
    const transport = Object.assign(
      (_url: string, init: { deadline?: { ms: number; what: string } }) => {
        seen.push(init.deadline && `${init.deadline.what} ${init.deadline.ms}`);
        return Promise.reject(new DOMException(`The ${init.deadline?.what} timed out`, "TimeoutError"));
      },
      { deadlines: true },
    );
    const client = createEmohaaClient({ limits: UPSTREAM_LIMITS, baseUrl: "http://u.invalid", fetch: transport });
    assert.equal(client.timesOut, true);
    await assert.rejects(
      client.createConversation("T", undefined, 4000),
      (e: unknown) => e instanceof DOMException && e.message === "The create request timed out",
    );
    await assert.rejects(
      client.deleteConversation("T", "c", undefined, 10_000),
      (e: unknown) => e instanceof DOMException && e.name === "TimeoutError",
    );
    // Without a limit a transport's TimeoutError is a failure to reach Emohaa like any other.
    await assert.rejects(
      client.deleteConversation("T", "c"),
      (e: unknown) => e instanceof UpstreamError && e.code === "upstream_unreachable",
    );
    assert.deepEqual(seen, ["create request 4000", "delete request 10000", undefined]);
    // A transport that keeps none (the runtime's fetch): the caller bounds the call (lib/chat/deadline.ts).
    assert.equal(
      createEmohaaClient({ limits: UPSTREAM_LIMITS, baseUrl: "http://u.invalid", fetch: transport as never })
        .timesOut,
      true,
    );
    assert.equal(
      createEmohaaClient({ limits: UPSTREAM_LIMITS, baseUrl: "http://u.invalid", fetch: (() => {}) as never })
        .timesOut,
      false,
    );
  });
});

describe("createEmohaaClient on the project's upstream client", () => {
  it("reads a chat's pushed body as it is: the answer's body stream is never made", async () => {
    const sse = "data: 你\n\ndata: 好\n\ndata: [DONE]\n\n";
    const bytes = new TextEncoder().encode(sse);
    // An upstream in memory: a chunked event stream in two writes, the second a turn later.
    const dial: Dial = async (_target, events: WireEvents) => ({
      write() {
        const head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        const chunk = (b: Uint8Array) => `${b.length.toString(16)}\r\n${new TextDecoder().decode(b)}\r\n`;
        setTimeout(() => events.data(new TextEncoder().encode(head + chunk(bytes.subarray(0, 9)))), 0);
        setTimeout(() => events.data(new TextEncoder().encode(chunk(bytes.subarray(9)) + "0\r\n\r\n")), 5);
      },
      end() {},
    });
    const http1 = createHttp1Fetch(dial);
    let looked = 0;
    // The answer as the client sees it, with every look at `body` counted (a Proxy keeps it the same object to
    // pushBodyOf: the prototype, and so instanceof, are the target's).
    const counting = Object.assign(
      async (url: string, init: FetchInit) =>
        new Proxy(await http1(url, init), {
          get(target, key) {
            if (key === "body") looked++;
            return Reflect.get(target, key, target);
          },
        }),
      { deadlines: true },
    );
    const client = createEmohaaClient({ limits: UPSTREAM_LIMITS, baseUrl: "http://up.invalid", fetch: counting });
    assert.deepEqual(await readAll(await client.openChat("T", "c", "p")), ["你", "好"]);
    assert.equal(looked, 0, "the body stream was made");
    http1.close();
  });
});

describe("parseConversationId", () => {
  it("reads plain text, a JSON string and an object", () => {
    assert.equal(parseConversationId("abc-1"), "abc-1");
    assert.equal(parseConversationId('"abc-1"'), "abc-1");
    assert.equal(parseConversationId('{"id":"abc-1"}'), "abc-1");
    assert.equal(parseConversationId('{"id":42}'), "42");
  });
  it("refuses empty and odd bodies", () => {
    assert.equal(parseConversationId(""), null);
    assert.equal(parseConversationId("<html>"), null);
    assert.equal(parseConversationId('{"status":500}'), null);
  });
});

describe("createEmohaaClient", () => {
  it("signs every request freshly with browser-like headers", async () => {
    let n = 0;
    const { f, calls } = fakeFetch(() => new Response("c1"));
    const client = createEmohaaClient({
      limits: UPSTREAM_LIMITS,
      baseUrl: "http://up/echo-prod/",
      fetch: f,
      now: () => 1000 + n,
      randomId: () => `r${++n}`,
    });
    await client.createConversation("TOK");
    await client.createConversation("TOK");
    const [a, b] = calls.map((c) => new Headers(c.init.headers));
    assert.equal(calls[0]!.url.href, "http://up/echo-prod/generate/id?create=true");
    assert.equal(a!.get("authorization"), "Bearer TOK");
    assert.equal(a!.get("origin"), "https://echo.turing-world.com");
    assert.equal(a!.get("referer"), "https://echo.turing-world.com/");
    assert.match(a!.get("user-agent")!, /Chrome/);
    assert.notEqual(a!.get("x-xss-id"), b!.get("x-xss-id"));
    assert.equal(a!.get("x-xss-real"), sign(Number(a!.get("x-xss-ts")), a!.get("x-xss-id")!).real);
  });

  it("puts token, cid, prompt, role and the signature in the chat URL", async () => {
    const { f, calls } = fakeFetch(() => chunked([new TextEncoder().encode("data: hi\n\ndata: [DONE]\n\n")]));
    const client = createEmohaaClient({ limits: UPSTREAM_LIMITS, baseUrl: "http://up/echo-prod", fetch: f });
    assert.deepEqual(await readAll(await client.openChat("TOK", "c1", "user:你好 & co", undefined)), ["hi"]);
    const q = calls[0]!.url.searchParams;
    const h = new Headers(calls[0]!.init.headers);
    assert.equal(calls[0]!.url.pathname, "/echo-prod/chat");
    assert.equal(q.get("token"), "TOK");
    assert.equal(q.get("cid"), "c1");
    assert.equal(q.get("prompt"), "user:你好 & co");
    assert.equal(q.get("role"), "echo");
    assert.equal(q.get("xts"), h.get("x-xss-ts"));
    assert.equal(q.get("xid"), h.get("x-xss-id"));
    assert.equal(q.get("xreal"), h.get("x-xss-real"));
  });

  it("decodes multi-byte characters split across reads and joins multi-line data with \\n", async () => {
    const bytes = new TextEncoder().encode("data: 你好😊\n\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n");
    const chunks = [bytes.slice(0, 8), bytes.slice(8, 13), bytes.slice(13, 14), bytes.slice(14)];
    const { f } = fakeFetch(() => chunked(chunks));
    const client = createEmohaaClient({ limits: UPSTREAM_LIMITS, baseUrl: "http://up", fetch: f });
    assert.deepEqual(await readAll(await client.openChat("T", "c", "p")), ["你好😊", "line1\nline2"]);
  });

  it("treats a stream that ends without [DONE] as cut", async () => {
    const { f } = fakeFetch(() => chunked([new TextEncoder().encode("data: a\n\n")]));
    const client = createEmohaaClient({ limits: UPSTREAM_LIMITS, baseUrl: "http://up", fetch: f });
    await assert.rejects(
      readAll(await client.openChat("T", "c", "p")),
      (e: unknown) => e instanceof UpstreamError && e.code === "upstream_stream_cut",
    );
  });

  it("maps problem bodies, with or without a matching HTTP status", async () => {
    const cases: [Response, number, string][] = [
      [new Response(JSON.stringify({ status: 401, title: "Unauthorized" }), { status: 401 }), 401, "auth"],
      [new Response(JSON.stringify({ status: 401, title: "Unauthorized" }), { status: 200 }), 401, "auth"],
      [
        new Response(JSON.stringify({ status: 429, title: "Too Many", detail: "another request is in progress" }), {
          status: 429,
          headers: { "retry-after": "3" },
        }),
        429,
        "busy",
      ],
      [new Response("oops", { status: 503 }), 502, "server"],
    ];
    for (const [res, status, kind] of cases) {
      const client = createEmohaaClient({
        limits: UPSTREAM_LIMITS,
        baseUrl: "http://up",
        fetch: (async () => res.clone()) as unknown as typeof fetch,
      });
      await assert.rejects(client.createConversation("SECRET-TOKEN"), (e: unknown) => {
        assert.ok(e instanceof UpstreamError);
        assert.equal(e.status, status);
        assert.equal(e.kind, kind);
        assert.ok(!e.message.includes("SECRET-TOKEN"));
        return true;
      });
    }
  });

  it("applies one status rule to calls and chats: HTTP status, a problem body's own status, redirects refused", async () => {
    const problem401 = () => new Response(JSON.stringify({ status: 401, title: "Unauthorized" }), { status: 200 });
    const cases: [() => Response, "call" | "chat", string, string][] = [
      [problem401, "call", "auth", "invalid_token"],
      [problem401, "chat", "auth", "invalid_token"],
      [
        () => new Response(null, { status: 302, headers: { location: "http://elsewhere/" } }),
        "call",
        "protocol",
        "upstream_redirect",
      ],
      [
        () => new Response(null, { status: 302, headers: { location: "http://elsewhere/" } }),
        "chat",
        "protocol",
        "upstream_redirect",
      ],
      [
        () => new Response("<html>", { status: 200, headers: { "content-type": "text/html" } }),
        "chat",
        "server",
        "upstream_error",
      ],
      [
        () => new Response("busy", { status: 429, headers: { "retry-after": "7" } }),
        "chat",
        "rate",
        "rate_limit_exceeded",
      ],
    ];
    for (const [answer, which, kind, code] of cases) {
      const client = createEmohaaClient({
        limits: UPSTREAM_LIMITS,
        baseUrl: "http://up",
        fetch: (() => Promise.resolve(answer())) as unknown as typeof fetch,
      });
      const sent = which === "call" ? client.deleteConversation("T", "c") : client.openChat("T", "c", "p");
      await assert.rejects(sent, (e: unknown) => {
        assert.ok(e instanceof UpstreamError, `${which}: ${e}`);
        assert.deepEqual([e.kind, e.code], [kind, code], `${which} answered ${answer().status}`);
        return true;
      });
    }
    const ok = createEmohaaClient({
      limits: UPSTREAM_LIMITS,
      baseUrl: "http://up",
      fetch: (() => Promise.resolve(new Response(""))) as unknown as typeof fetch,
    });
    await ok.deleteConversation("T", "c");
  });

  it("leaves an abort the caller's own, while another failure to send is a 502", async () => {
    const ac = new AbortController();
    ac.abort();
    const aborting =
      ((_: unknown, init: RequestInit) => Promise.reject(init.signal!.reason)) as unknown as typeof fetch;
    const client = createEmohaaClient({ limits: UPSTREAM_LIMITS, baseUrl: "http://up", fetch: aborting });
    await assert.rejects(client.openChat("T", "c", "p", ac.signal), (e: unknown) => e === ac.signal.reason);
    await assert.rejects(client.createConversation("T", ac.signal), (e: unknown) => e === ac.signal.reason);
  });

  it("reads an answer only within its bound: an endless body is refused, an endless error body is cut", async () => {
    let pulled = 0;
    const endless = (type: string, status = 200) =>
      new Response(
        new ReadableStream({
          pull(c) {
            pulled++;
            c.enqueue(new TextEncoder().encode(`{"status":${status},"title":"x` + "y".repeat(8192)));
          },
        }),
        { status, headers: { "content-type": type } },
      );
    const { f } = fakeFetch((
      url,
    ) => (url.pathname === "/generate/id" ? endless("application/json") : endless("application/problem+json", 500)));
    const client = createEmohaaClient({
      baseUrl: "http://up",
      fetch: f,
      limits: { ...UPSTREAM_LIMITS, maxReplyChars: 64 * 1024 },
    });
    await assert.rejects(
      client.createConversation("tok"),
      (e: any) => e instanceof UpstreamError && e.code === "upstream_reply_too_large",
    );
    assert.ok(pulled < 20, `read ${pulled} chunks of an endless body`);
    pulled = 0;
    // The error body is cut at its bound; what was read is still not a whole problem body, so the status rules.
    await assert.rejects(
      client.openChat("tok", "c1", "hi"),
      (e: any) => e instanceof UpstreamError && e.kind === "server",
    );
    assert.ok(pulled < 20, `read ${pulled} chunks of an endless error body`);
  });

  it("maps a network failure to 502 upstream_unreachable", async () => {
    const client = createEmohaaClient({
      limits: UPSTREAM_LIMITS,
      baseUrl: "http://up",
      fetch: (async () => {
        throw new TypeError("connection refused");
      }) as unknown as typeof fetch,
    });
    await assert.rejects(
      client.createConversation("T"),
      (e: unknown) => e instanceof UpstreamError && e.status === 502 && e.code === "upstream_unreachable",
    );
  });

  it("talks to the simulator: create, chat, list, delete", async () => {
    const sim = createSimulator();
    const client = createEmohaaClient({
      limits: UPSTREAM_LIMITS,
      baseUrl: "http://sim/echo-prod",
      fetch: simFetch(sim),
    });
    const ids = [
      await client.createConversation("live-a"),
      await client.createConversation("live-a"),
      await client.createConversation("live-a"),
    ];
    assert.equal(new Set(ids).size, 3);
    assert.equal((await client.listConversations("live-a")).length, 3);
    assert.equal(
      (await readAll(await client.openChat("live-a", ids[0]!, "user:hi"))).join(""),
      "你好啊！我是Emohaa，想和我聊点什么吗？😊 今天心情如何？",
    );
    for (const id of ids) await client.deleteConversation("live-a", id);
    assert.equal(sim.state().open, 0);
    assert.equal(sim.state().badSignatures, 0);
    await assert.rejects(
      client.listConversations("expired-a"),
      (e: unknown) => e instanceof UpstreamError && e.status === 401,
    );
  });
});
