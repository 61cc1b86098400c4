// End to end: the token pool — failover past dead tokens, one stream per account, the queue, server-side tokens.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, signalsApply, startServer } from "../support/server.ts";

let sim: RunningSim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim?.stop();
});

const chat = (url: string, bearer: string, content = "hi", init: RequestInit = {}) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ messages: [{ role: "user", content }] }),
    ...init,
  });
const settled = () =>
  eventually(() => sim.sim.state().open === 0 && sim.sim.state().openStreams === 0, 15_000, "conversations deleted")
    .catch((e) => {
      const { prompts: _prompts, requests: _requests, ...s } = sim.sim.state();
      throw new Error(`${e.message}: ${JSON.stringify(s)}`);
    });

describe("token pool (client tokens)", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, QUEUE_TIMEOUT_MS: "1500", LOG_LEVEL: "debug" });
  });
  after(async () => {
    await server?.kill();
  });

  it("a dead token among live ones is skipped after its first failure and never costs the client an error", async () => {
    for (let i = 0; i < 6; i++) assert.equal((await chat(server.url, "expired-pool,live-p1,live-p2")).status, 200);
    assert.ok((sim.sim.state().callsByToken["expired-pool"] ?? 0) <= 1);
    await settled();
  });

  it("10 parallel requests over 3 one-stream tokens all succeed with at most 3 streams open", async () => {
    sim.sim.reset();
    const results = await Promise.all(
      Array.from(
        { length: 10 },
        () =>
          chat(server.url, "live-q1,live-q2,live-q3", "[[pieces:3]] [[delay:20]]").then(async (
            r,
          ) => [r.status, ((await r.json()) as any).choices?.[0]?.message?.content]),
      ),
    );
    assert.deepEqual(results.map((r) => r[0]), Array(10).fill(200));
    assert.ok(results.every((r) => typeof r[1] === "string" && r[1].length > 0));
    assert.ok(sim.sim.state().maxOpenStreams <= 3, `max open streams ${sim.sim.state().maxOpenStreams}`);
    assert.ok(sim.sim.state().maxOpenStreams >= 2);
    await settled();
  });

  it("when every account stays busy, the queue times out with 429 and retry-after", async () => {
    const long = chat(server.url, "live-r", "[[pieces:30]] [[delay:100]]");
    await eventually(() => sim.sim.state().openStreams > 0, 10_000, "first stream");
    const res = await chat(server.url, "live-r");
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get("retry-after")) >= 1);
    assert.equal(((await res.json()) as any).error.code, "accounts_busy");
    assert.equal((await long).status, 200);
    await settled();
  });

  it("a queued client that disconnects never reaches the upstream", async () => {
    const long = chat(server.url, "live-s", "[[pieces:6]] [[delay:100]]");
    await eventually(() => sim.sim.state().openStreams > 0, 10_000, "first stream");
    const callsBefore = sim.sim.state().callsByToken["live-s"];
    const ac = new AbortController();
    const queued = chat(server.url, "live-s", "hi", { signal: ac.signal }).catch(() => "aborted");
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    assert.equal(await queued, "aborted");
    assert.equal((await long).status, 200);
    await settled();
    await new Promise((r) => setTimeout(r, 200));
    // The long request's delete is the only call after it started; the queued one made none.
    assert.equal(sim.sim.state().callsByToken["live-s"], callsBefore! + 1);
  });

  it("GET /v1/tokens/status shows the caller's own tokens by masked label", async () => {
    const res = await fetch(`${server.url}/v1/tokens/status`, {
      headers: { authorization: "Bearer expired-pool,live-p1" },
    });
    const body = (await res.json()) as any;
    assert.equal(body.mode, "client");
    assert.deepEqual(body.tokens.map((t: any) => t.state), ["cooling", "healthy"]);
    assert.equal(body.tokens[0].lastError, "auth");
    assert.ok(!JSON.stringify(body).includes("expired-pool"));
  });
});

describe("server-side tokens", () => {
  it("refuses to start without API_KEYS unless ALLOW_ANONYMOUS=true, and then not with CORS_ORIGIN=*", async () => {
    await assert.rejects(startServer({ EMOHAA_BASE_URL: sim.baseUrl, EMOHAA_TOKENS: "live-x" }), /API_KEYS/);
    // Any web page could spend the accounts from its visitors' browsers.
    await assert.rejects(
      startServer({ EMOHAA_BASE_URL: sim.baseUrl, EMOHAA_TOKENS: "live-x", ALLOW_ANONYMOUS: "true" }),
      /ALLOW_ANONYMOUS.*CORS_ORIGIN/,
    );
    const anon = await startServer({
      EMOHAA_BASE_URL: sim.baseUrl,
      EMOHAA_TOKENS: "live-anon",
      ALLOW_ANONYMOUS: "true",
      CORS_ORIGIN: "https://chat.example",
    });
    try {
      assert.equal((await chat(anon.url, "anything")).status, 200);
    } finally {
      await anon.kill();
    }
    await settled();
  });

  const keyServer = async () => {
    const dir = mkdtempSync(join(tmpdir(), "emohaa-tokens-"));
    const file = join(dir, "tokens.txt");
    writeFileSync(file, "# accounts\nexpired-file1\n");
    const server = await startServer({
      EMOHAA_BASE_URL: sim.baseUrl,
      EMOHAA_TOKENS_FILE: file,
      API_KEYS: "gk-one,gk-two",
      LOG_LEVEL: "debug",
    });
    return { file, server };
  };
  const assertNoSecrets = (out: string) => {
    for (const secret of ["expired-file1", "live-file2", "gk-one", "gk-two", "gk-wrong"]) {
      assert.ok(!out.includes(secret), `log contains ${secret}`);
    }
  };

  it("gateway keys: a wrong key is 401, a right one works, the bearer never goes upstream", async () => {
    const { server } = await keyServer();
    try {
      const wrong = await chat(server.url, "gk-wrong");
      assert.equal(wrong.status, 401);
      assert.equal(((await wrong.json()) as any).error.code, "invalid_api_key");
      // The key is right; the server's own account is what Emohaa rejected.
      const expired = await chat(server.url, "gk-two");
      assert.equal(expired.status, 503);
      const body = await expired.text();
      assert.ok(!body.includes("expired-file1") && !body.includes("gk-two"));
      assert.equal(sim.sim.state().callsByToken["gk-two"], undefined);
      await settled();
      assertNoSecrets(server.output());
    } finally {
      await server.kill();
    }
  });

  it("SIGHUP reloads the tokens file", { skip: !signalsApply && "no process signals where this runs" }, async () => {
    const { file, server } = await keyServer();
    try {
      assert.equal((await chat(server.url, "gk-two")).status, 503);
      writeFileSync(file, "live-file2\n");
      server.signal("SIGHUP");
      // The file watch may reload it too: the SIGHUP handler's own line says the signal did.
      await eventually(
        () => server.output().includes("reloaded 1 server-side tokens from EMOHAA_TOKENS_FILE"),
        15_000,
        "the SIGHUP reload's log line",
      );
      await eventually(async () => (await chat(server.url, "gk-one")).status === 200, 15_000, "reloaded tokens");
      assert.equal(sim.sim.state().callsByToken["gk-one"], undefined);
      assert.equal(sim.sim.state().callsByToken["gk-two"], undefined);

      const status = await fetch(`${server.url}/v1/tokens/status`, { headers: { authorization: "Bearer gk-one" } });
      assert.equal(status.status, 200);
      const s = (await status.json()) as any;
      assert.equal(s.mode, "server");
      assert.equal(s.tokens.length, 1);
      assert.equal(
        (await fetch(`${server.url}/v1/tokens/status`, { headers: { authorization: "Bearer nope" } })).status,
        401,
      );

      await settled();
      assertNoSecrets(server.output());
    } finally {
      await server.kill();
    }
  });
});
