// End to end: the real server against hostile upstreams, with each upstream client (lib/upstream/http1.ts and the runtime's
// fetch): errors that quote the token, redirects to another host, resets right after a chat was answered, and an
// event over the size bound that arrives whole.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { serve, type Served } from "../../runtime/serve.ts";
import { rawServer } from "../support/raw-server.ts";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, signalsApply, startServer } from "../support/server.ts";

const chat = (url: string, token: string, content: string, stream = false) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ stream, messages: [{ role: "user", content }] }),
  });

/** Every way a test token could show up: itself, URL-encoded, and the mode part alone. */
const leaks = (text: string, token: string) =>
  [token, encodeURIComponent(token), token.split("-")[0]!].filter((t) => text.includes(t));

/**
 * A raw HTTP/1.1 upstream (node:net): creates conversations and deletes them normally, and answers every chat with
 * a reset, after writing the head and first piece (`live-resetpiece…` tokens) or before writing anything (what a
 * client sees when the reset overtakes those bytes). It counts the chats each conversation got.
 */
async function resettingUpstream() {
  const chatsByConversation = new Map<string, number>();
  let seq = 0;
  const raw = await rawServer((sock, head) => {
    const [method, target] = head.split(" ");
    const url = new URL(target!, "http://upstream");
    if (url.pathname.endsWith("/chat")) {
      const cid = url.searchParams.get("cid") ?? "";
      chatsByConversation.set(cid, (chatsByConversation.get(cid) ?? 0) + 1);
      if (url.searchParams.get("token")?.startsWith("live-resetpiece")) {
        sock.write(
          "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: a\n\n\r\n",
        );
      }
      sock.resetAndDestroy();
      return;
    }
    const body = method === "DELETE" ? '{"status":200,"title":"OK"}' : `conv-${++seq}`;
    sock.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  });
  return { baseUrl: `${raw.url}/echo-prod`, chatsByConversation, stop: raw.stop };
}

let sim: RunningSim;
let reset: Awaited<ReturnType<typeof resettingUpstream>>;
/** Where a redirect points: another server, which must never hear from the gateway. */
let elsewhere: Served;
let elsewhereHits = 0;
/** The simulator behind a front that answers some calls with a redirect to `elsewhere` (counted per call). */
let redirecting: Served;
const redirected: Record<string, number> = {};

before(async () => {
  sim = await startSim();
  reset = await resettingUpstream();
  elsewhere = await serve((req) => {
    elsewhereHits++;
    return new URL(req.url).pathname.endsWith("/chat")
      ? new Response("data: evil\n\ndata: [DONE]\n\n", { headers: { "content-type": "text/event-stream" } })
      : new Response("conv-elsewhere");
  }, { port: 0, hostname: "127.0.0.1" });
  redirecting = await serve((req) => {
    const url = new URL(req.url);
    const token = (req.headers.get("authorization") ?? "").slice("Bearer ".length);
    const call = url.pathname.endsWith("/generate/id")
      ? "create"
      : url.pathname.endsWith("/chat")
      ? "chat"
      : url.pathname.endsWith("/conv")
      ? "del"
      : "";
    if (token.startsWith(`live-hop${call}-`)) {
      redirected[call] = (redirected[call] ?? 0) + 1;
      return new Response(null, {
        status: 302,
        headers: { location: `http://127.0.0.1:${elsewhere.port}${url.pathname}${url.search}` },
      });
    }
    return sim.sim.fetch(req);
  }, { port: 0, hostname: "127.0.0.1" });
});

after(async () => {
  await elsewhere?.stop(true);
  await redirecting?.stop(true);
  await reset?.stop();
  await sim?.stop();
});

for (const client of ["http1", "fetch"] as const) {
  describe(`hostile upstream (UPSTREAM_CLIENT=${client})`, () => {
    let gateway: RunningServer;
    let toReset: RunningServer;
    before(async () => {
      [gateway, toReset] = await Promise.all([
        startServer({
          EMOHAA_BASE_URL: `http://127.0.0.1:${redirecting.port}/echo-prod`,
          UPSTREAM_CLIENT: client,
          UPSTREAM_MAX_EVENT_BYTES: "1024",
        }),
        startServer({ EMOHAA_BASE_URL: reset.baseUrl, UPSTREAM_CLIENT: client }),
      ]);
    });
    // `deno serve deploy.ts` (Deno Deploy's way, no signals there) lets an idle kept-alive upstream connection
    // hold the process past SIGTERM: it is ended the hard way.
    const stop = signalsApply ? undefined : "SIGKILL";
    after(async () => {
      await gateway?.kill(stop);
      await toReset?.kill(stop);
    });

    it("never hands the token to the client or the log when the upstream's errors quote it", async () => {
      const seen: string[] = [];
      const check = (text: string, token: string, where: string) =>
        assert.deepEqual(leaks(text, token), [], `${where}: ${text}`);
      // Creating, and the chat call itself, fail with HTTP errors.
      for (const token of [`leakycreate-${client}`, `leakychat-${client}`]) {
        const res = await chat(gateway.url, token, "hi");
        const text = await res.text();
        assert.equal(res.status, 502, text);
        assert.match(JSON.parse(text).error.message, /upstream status 500/);
        check(text, token, token);
        seen.push(token);
      }
      // An error event after the first piece: an error frame in a stream, a 502 otherwise.
      const token = `leakyevent-${client}`;
      const streamed = await chat(gateway.url, token, "hi", true);
      const frames = await streamed.text();
      assert.equal(streamed.status, 200);
      assert.match(frames, /"error":/);
      check(frames, token, "stream");
      const whole = await chat(gateway.url, token, "hi");
      assert.equal(whole.status, 502);
      check(await whole.text(), token, "non-stream");
      seen.push(token);
      // Deleting fails (the client got its answer), and a token check fails: nothing reaches the client but the verdict.
      const del = `leakydel-${client}`;
      const before = sim.sim.state().callsByToken[del] ?? 0;
      assert.equal((await chat(gateway.url, del, "hi")).status, 200);
      await eventually(() => (sim.sim.state().callsByToken[del] ?? 0) >= before + 4, 10_000, "deletion retried");
      const list = `leakylist-${client}`;
      const checked = await fetch(`${gateway.url}/token/check`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token: list }),
      });
      assert.deepEqual(await checked.json(), { live: false, expiresAt: null });
      seen.push(del, list);
      await eventually(() => gateway.output().includes("/token/check 200"), 5000, "log lines");
      for (const t of seen) check(gateway.output(), t, "log");
      gateway.assertPrivate();
    });

    it("never follows a redirect: the client gets 502 and the other host hears nothing", async () => {
      const hitsBefore = elsewhereHits;
      for (const call of ["create", "chat"]) {
        for (const stream of [false, true]) {
          const res = await chat(gateway.url, `live-hop${call}-${client}`, "hi", stream);
          const body = (await res.json()) as { error: { code: string } };
          assert.equal(res.status, 502, `${call} ${JSON.stringify(body)}`);
          assert.equal(body.error.code, "upstream_redirect");
        }
      }
      // A delete that is redirected fails quietly (the reply was complete): it still goes nowhere else.
      const deletes = redirected.del ?? 0;
      assert.equal((await chat(gateway.url, `live-hopdel-${client}`, "hi")).status, 200);
      await eventually(() => (redirected.del ?? 0) > deletes, 5000, "deletion tried");
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(elsewhereHits - hitsBefore, 0);
    });

    it("sends each chat into its conversation once when the upstream resets the connection", async () => {
      for (const token of [`live-resetpiece-${client}`, `live-resetnone-${client}`]) {
        reset.chatsByConversation.clear();
        for (let i = 0; i < 3; i++) {
          const res = await chat(toReset.url, token, "hi");
          assert.equal(res.status, 502, await res.text());
        }
        // Failover may open new conversations; none gets the prompt twice.
        assert.ok(reset.chatsByConversation.size >= 3);
        assert.deepEqual(
          [...new Set(reset.chatsByConversation.values())],
          [1],
          `${token}: ${JSON.stringify([...reset.chatsByConversation])}`,
        );
      }
    });

    it("refuses an event over UPSTREAM_MAX_EVENT_BYTES however it arrives: whole in one write, or in pieces", async () => {
      for (const directive of ["[[hugeone:5000]]", "[[huge:5000]]", "[[hugeone:1500]]"]) {
        for (const stream of [false, true]) {
          const res = await chat(gateway.url, `live-huge-${client}`, directive, stream);
          const body = (await res.json()) as { error: { code: string } };
          assert.equal(res.status, 502, `${directive} ${JSON.stringify(body).slice(0, 300)}`);
          assert.equal(body.error.code, "upstream_event_too_large");
        }
      }
      // An event within the bound is a piece like any other.
      const res = await chat(gateway.url, `live-huge-${client}`, "[[hugeone:1000]]");
      assert.equal(res.status, 200);
    });
  });
}

describe("through a proxy (UPSTREAM_CLIENT=auto with HTTP_PROXY set: the runtime's fetch)", () => {
  let proxy: Served;
  let proxied: string[] = [];
  let gateway: RunningServer;
  before(async () => {
    // A forward proxy: requests arrive with the upstream's absolute URL; the simulator answers them.
    proxy = await serve((req) => {
      proxied.push(`${req.method} ${new URL(req.url).pathname}`);
      return sim.sim.fetch(req);
    }, { port: 0, hostname: "127.0.0.1" });
    // The upstream's name resolves nowhere: only the proxy can reach it (Deno sends loopback addresses direct).
    gateway = await startServer({
      EMOHAA_BASE_URL: "http://emohaa.invalid/echo-prod",
      HTTP_PROXY: `http://127.0.0.1:${proxy.port}`,
      NO_PROXY: "",
      no_proxy: "",
    });
  });
  after(async () => {
    await gateway?.kill();
    await proxy?.stop(true);
  });

  it("sends create, chat and delete through the proxy, chats included", async () => {
    proxied = [];
    const res = await chat(gateway.url, "live-proxy", "[[reply:through]]", true);
    assert.equal(
      res.status,
      200,
      `${await res.clone().text()} ${JSON.stringify(proxied)}\n${gateway.output().slice(-2000)}`,
    );
    // The reply may come in several chunks (however the pieces met the reads): its text is what they add up to.
    const text = (await res.text()).split("\n").filter((l) => l.startsWith("data: {")).map((l) =>
      JSON.parse(l.slice(6)).choices[0]?.delta?.content ?? ""
    ).join("");
    assert.equal(text, "through");
    await eventually(() => proxied.some((r) => r.startsWith("DELETE")), 5000, "deletion");
    assert.deepEqual(proxied.map((r) => r.replace(/^(\w+) .*\//, "$1 /")), ["GET /id", "GET /chat", "DELETE /conv"]);
  });
});
