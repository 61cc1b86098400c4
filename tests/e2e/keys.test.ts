// End to end: gateway keys over real HTTP. One instance for the admin API's answers; then two instances sharing one
// key's limits, usage and revocation through Redis, and two through Deno KV (under Deno); the openai SDK on the 429s.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, startServer, writesFiles } from "../support/server.ts";
import { sharedStores } from "../support/stores.ts";

const ADMIN = "admin-key-7d2c9e41b0a5f3c8";
const tmp = mkdtempSync(join(tmpdir(), "emohaa-keys-"));
const uid = () => crypto.randomUUID().slice(0, 8);

let sim: RunningSim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const env = (more: Record<string, string> = {}) => ({
  EMOHAA_BASE_URL: sim.baseUrl,
  EMOHAA_TOKENS: `live-${uid()}-1,live-${uid()}-2`,
  TOKEN_CONCURRENCY: "8",
  ADMIN_KEY: ADMIN,
  JOURNAL: "off",
  ...more,
});

async function admin(url: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : undefined };
}

async function chat(url: string, key: string | undefined, content = "hello [[pieces:3]]", stream = false) {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ stream, messages: [{ role: "user", content }] }),
  });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** Polls `f` until it gives something (not undefined), within `ms`; resolves what it gave. */
async function eventually<T>(
  f: () => Promise<T | undefined | false> | T | undefined | false,
  ms: number,
  what: string,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sdk = (url: string, key: string, maxRetries = 0) => new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries });

describe("gateway keys on one instance", () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer(env({ LOG_LEVEL: "debug" }));
  });
  after(async () => {
    await s?.kill();
  });

  it("before any key exists every request is a 401 that says how to make one", async () => {
    const r = await chat(s.url, undefined);
    assert.equal(r.status, 401);
    assert.match(r.body, /POST \/admin\/keys/);
  });

  it("create shows the secret once; list, change and revoke never show it; it is in no log line", async () => {
    const created = await admin(s.url, "POST", "/admin/keys", {
      name: "alice",
      rpm: 50,
      concurrency: 2,
      tokensPerDay: 100000,
      expiresAt: "2099-01-01T00:00:00Z",
    });
    assert.equal(created.status, 201, created.text);
    const secret = created.json.key as string;
    assert.match(secret, /^sk-emohaa-[\w-]{43}$/);
    assert.deepEqual(
      { ...created.json, key: undefined, createdAt: undefined },
      {
        key: undefined,
        name: "alice",
        source: "admin",
        rpm: 50,
        concurrency: 2,
        tokensPerDay: 100000,
        expiresAt: "2099-01-01T00:00:00.000Z",
        createdAt: undefined,
        lastUsedAt: null,
        usage: { requests: 0, promptTokens: 0, completionTokens: 0 },
      },
    );
    const ok = await chat(s.url, secret);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.headers.get("x-ratelimit-limit-requests"), "50");
    assert.equal(ok.headers.get("x-ratelimit-remaining-requests"), "49");
    // OpenAI's duration form: `250ms`, `12s`, and `1m0s` for a request at the very start of the minute.
    assert.match(ok.headers.get("x-ratelimit-reset-requests")!, /^(\d+ms|\d+s|1m0s)$/);
    const usage = await eventually(
      async () => {
        const l = await admin(s.url, "GET", "/admin/keys");
        const k = l.json.keys.find((k: { name: string }) => k.name === "alice");
        return k.usage.requests === 1 && k.usage.completionTokens > 0 ? l : undefined;
      },
      5000,
      "usage counted",
    );
    assert.ok(!usage.text.includes(secret) && !usage.text.includes(secret.slice(10)), "no secret in GET");
    const k = usage.json.keys.find((k: { name: string }) => k.name === "alice");
    assert.ok(k.usage.promptTokens > 0 && k.lastUsedAt, JSON.stringify(k));
    assert.equal(usage.json.persistence, "memory");
    assert.equal(usage.json.day, new Date().toISOString().slice(0, 10));

    const changed = await admin(s.url, "PATCH", "/admin/keys/alice", { rpm: 1, tokensPerDay: null });
    assert.equal(changed.status, 200, changed.text);
    assert.equal(changed.json.rpm, 1);
    assert.equal(changed.json.tokensPerDay, null);
    assert.ok(!changed.text.includes(secret));
    // The minute already holds one request: the changed limit applies at once (unless the minute just turned: then
    // the next request is the one over it).
    let over = await chat(s.url, secret);
    if (over.status === 200) over = await chat(s.url, secret);
    assert.equal(over.status, 429);
    assert.equal(JSON.parse(over.body).error.code, "rate_limit_exceeded");

    const revoked = await admin(s.url, "DELETE", "/admin/keys/alice");
    assert.deepEqual(revoked.json, { name: "alice", revoked: true });
    assert.equal((await chat(s.url, secret)).status, 401);

    // The access log names the key, never its secret; the metrics count by name.
    // Log lines are written in batches: the revoked key's 401 is the last one.
    const out = await eventually(
      () => {
        const o = s.output();
        return /DELETE \/admin\/keys\/alice 200[^]*POST \/v1\/chat\/completions 401/.test(o) && o;
      },
      3000,
      "the log lines",
    );
    assert.ok(!out.includes(secret) && !out.includes(secret.slice(10)), "no secret in the log");
    assert.match(out, /POST \/v1\/chat\/completions 200 .* key=alice/);
    assert.match(out, /POST \/v1\/chat\/completions 429 .*code=rate_limit_exceeded.* key=alice/);
    s.assertPrivate();
  });

  it("bad input gets a clear 400, a name in use 409, an unknown name 404, a wrong admin key 401", async () => {
    const cases: [unknown, RegExp][] = [
      [{ name: "bob", rpm: -1 }, /rpm/],
      [{ name: "bob", concurrency: 1.5 }, /concurrency/],
      [{ name: "b o b" }, /name/],
      [{ name: "x".repeat(65) }, /name/],
      [{ name: "bob", expiresAt: "2001-01-01T00:00:00Z" }, /expiresAt/],
      [{ name: "bob", expiresAt: "tomorrow" }, /expiresAt/],
      [{ name: "bob", spend: 5 }, /spend|Unrecognized/i],
    ];
    for (const [body, param] of cases) {
      const r = await admin(s.url, "POST", "/admin/keys", body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.match(JSON.stringify(r.json.error), param, r.text);
    }
    assert.equal((await admin(s.url, "POST", "/admin/keys", { name: "carol" })).status, 201);
    const dup = await admin(s.url, "POST", "/admin/keys", { name: "carol" });
    assert.equal(dup.status, 409);
    assert.equal(dup.json.error.code, "name_taken");
    assert.equal((await admin(s.url, "PATCH", "/admin/keys/nobody", { rpm: 1 })).status, 404);
    assert.equal((await admin(s.url, "PATCH", "/admin/keys/carol", { rpm: -3 })).status, 400);
    const wrong = await fetch(`${s.url}/admin/keys`, { headers: { authorization: "Bearer not-the-admin-key" } });
    assert.equal(wrong.status, 401);
    await wrong.text();
  });

  it("/metrics counts requests, tokens and refusals by key name", async () => {
    const created = await admin(s.url, "POST", "/admin/keys", { name: "dave", rpm: 1 });
    const secret = created.json.key as string;
    // Requests until the first 429 (a minute that turns in between lets one more through).
    let admitted = 0;
    for (let status = 200; status === 200;) {
      status = (await chat(s.url, secret)).status;
      if (status === 200) admitted++;
      else assert.equal(status, 429);
    }
    const text = await eventually(
      async () => {
        const r = await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${secret}` } });
        const t = await r.text();
        return /emohaa_key_tokens_total\{key="dave",kind="completion"\} [1-9]/.test(t) ? t : undefined;
      },
      5000,
      "tokens counted",
    );
    assert.match(text, new RegExp(`emohaa_key_requests_total\\{key="dave"\\} ${admitted}\n`));
    assert.match(text, /emohaa_key_refused_total\{key="dave",reason="rpm"\} 1/);
    assert.ok(!text.includes(secret));
  });
});

describe("keys of API_KEYS, and KEYS_FILE across a restart", () => {
  it("a key of API_KEYS keeps working, with KEY_DEFAULT_RPM, listed by its env… name with its usage", async () => {
    const s = await startServer(env({ API_KEYS: "key-env-1", KEY_DEFAULT_RPM: "2" }));
    try {
      assert.equal((await chat(s.url, "key-env-1")).status, 200);
      assert.equal((await chat(s.url, "key-env-1")).status, 200);
      const third = await chat(s.url, "key-env-1");
      if (third.status !== 429) {
        // The minute turned between the requests: the new minute's second one is the limit.
        assert.equal(third.status, 200);
        assert.equal((await chat(s.url, "key-env-1")).status, 429);
      }
      assert.equal((await chat(s.url, undefined)).status, 401, "no anonymous use");
      const listed = await eventually(
        async () => {
          const l = await admin(s.url, "GET", "/admin/keys");
          const k = l.json.keys.find((k: { source: string }) => k.source === "env");
          return k?.usage.requests >= 2 ? k : undefined;
        },
        5000,
        "the env key's usage",
      );
      assert.match(listed.name, /^env…[0-9a-f]{4}$/);
      assert.equal(listed.rpm, 2);
      const patch = await admin(s.url, "PATCH", `/admin/keys/${encodeURIComponent(listed.name)}`, { rpm: 9 });
      assert.ok(
        patch.status === 400 || patch.status === 404,
        `${patch.status}: keys of API_KEYS change in the environment`,
      );
      s.assertPrivate();
    } finally {
      await s.kill();
    }
  });

  it("with STATE=memory and KEYS_FILE a created key survives a restart; the file holds only its hash", async () => {
    const file = join(tmp, `keys-${uid()}.json`);
    if (!writesFiles) {
      // Deno Deploy's way (`deno serve` without --allow-write): no file can be kept, and the start says so.
      const err = await startServer(env({ KEYS_FILE: file })).then(async (s) => (await s.kill(), undefined), (e) => e);
      assert.match(String(err), /Invalid KEYS_FILE=.*this runtime cannot write files/);
      return;
    }
    const first = await startServer(env({ KEYS_FILE: file }));
    let secret: string;
    try {
      const r = await admin(first.url, "POST", "/admin/keys", { name: "erin", rpm: 3 });
      assert.equal(r.status, 201, r.text);
      secret = r.json.key;
      assert.equal((await admin(first.url, "GET", "/admin/keys")).json.persistence, "file");
    } finally {
      await first.kill();
    }
    const text = readFileSync(file, "utf8");
    assert.ok(!text.includes(secret) && text.includes('"erin"'));
    const second = await startServer(env({ KEYS_FILE: file }));
    try {
      const ok = await chat(second.url, secret);
      assert.equal(ok.status, 200, ok.body);
      assert.equal(ok.headers.get("x-ratelimit-limit-requests"), "3");
    } finally {
      await second.kill();
    }
  });
});

const backends = sharedStores();

for (const backend of backends) {
  describe(`two instances sharing gateway keys through ${backend.name}`, { skip: backend.skip }, () => {
    let a: RunningServer;
    let b: RunningServer;
    before(async () => {
      const shared = env({ STATE: backend.state() });
      [a, b] = await Promise.all([startServer(shared), startServer(shared)]);
    });
    after(async () => {
      await Promise.all([a?.kill(), b?.kill()]);
    });

    /** A key created through instance A, usable on B once B's poll read it. */
    async function key(name: string, limits: Record<string, number>): Promise<string> {
      const r = await admin(a.url, "POST", "/admin/keys", { name, ...limits });
      assert.equal(r.status, 201, r.text);
      const secret = r.json.key as string;
      await eventually(async () => (await chat(b.url, secret, "[[reply:ok]]")).status !== 401, 3000, "B knows it");
      return secret;
    }

    it("one rpm across both: the minute's requests alternate between them, the next is a 429 the SDK reads", async () => {
      // Created, then tried once on B (that counts); never at a minute's end, so all of it lands in one minute.
      while (new Date().getUTCSeconds() > 45) await new Promise((r) => setTimeout(r, 500));
      const secret = await key(`rpm-${uid()}`, { rpm: 5 });
      const remaining: string[] = [];
      for (const s of [a, b, a, b]) {
        const r = await chat(s.url, secret);
        assert.equal(r.status, 200, r.body);
        remaining.push(r.headers.get("x-ratelimit-remaining-requests")!);
      }
      assert.deepEqual(remaining, ["3", "2", "1", "0"]);
      const err = await sdk(b.url, secret).chat.completions
        .create({ model: "emohaa", messages: [{ role: "user", content: "hi" }] })
        .then(() => null, (e: unknown) => e);
      assert.ok(err instanceof OpenAI.RateLimitError, String(err));
      assert.equal(err.status, 429);
      assert.equal(err.code, "rate_limit_exceeded");
      const retryAfter = Number(err.headers?.get("retry-after"));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, String(retryAfter));
      assert.equal(err.headers?.get("x-ratelimit-remaining-requests"), "0");
    });

    it("one concurrency across both: the SDK's request on B waits out retry-after while A's stream holds the slot", async () => {
      const secret = await key(`conc-${uid()}`, { concurrency: 1 });
      // A client that has its answer finds the slot free on either instance: one request after another, never a 429.
      for (const [i, s] of [a, b, a, b, b, a].entries()) {
        const r = await chat(s.url, secret, "[[reply:ok]]", i % 2 === 0);
        assert.equal(r.status, 200, `request ${i}: ${r.body}`);
      }
      // A stream on A that holds the key's one slot for about 1.2 s, admitted (its head is here) before B is tried.
      const slow = await fetch(`${a.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${secret}` },
        body: JSON.stringify({ stream: true, messages: [{ role: "user", content: "[[pieces:6]] [[delay:200]]" }] }),
      });
      assert.equal(slow.status, 200);
      const refused = await chat(b.url, secret, "[[reply:x]]");
      assert.equal(refused.status, 429, refused.body);
      assert.equal(JSON.parse(refused.body).error.code, "rate_limit_exceeded");
      assert.equal(refused.headers.get("retry-after"), "1");
      const t0 = Date.now();
      // maxRetries: the SDK waits retry-after (1 s) between tries, and gets through once the stream ended.
      const done = await sdk(b.url, secret, 4).chat.completions.create({
        model: "emohaa",
        messages: [{ role: "user", content: "[[reply:after]]" }],
      });
      assert.equal(done.choices[0]!.message.content, "after");
      assert.match(await slow.text(), /data: \[DONE\]/);
      assert.ok(Date.now() - t0 < 8000);
    });

    it("one daily budget across both: once used on A, B answers 429 insufficient_quota, not to be retried", async () => {
      const secret = await key(`quota-${uid()}`, { tokensPerDay: 40 });
      // About 12 tokens per request (prompt and reply), counted after each reply and written within a second.
      await eventually(
        async () => {
          const r = await chat(a.url, secret, "[[reply:one two three four five six]]");
          return r.status === 429 ? r : undefined;
        },
        15_000,
        "A's quota spent",
      );
      const err = await sdk(b.url, secret).chat.completions
        .create({ model: "emohaa", messages: [{ role: "user", content: "hi" }] })
        .then(() => null, (e: unknown) => e);
      assert.ok(err instanceof OpenAI.RateLimitError, String(err));
      assert.equal(err.code, "insufficient_quota");
      assert.equal(err.headers?.get("x-should-retry"), "false");
    });

    it("usage is summed across instances, read on either", async () => {
      const name = `use-${uid()}`;
      const secret = await key(name, {});
      for (const s of [a, b, b, a, b]) assert.equal((await chat(s.url, secret, "[[reply:abc]]")).status, 200);
      // Six requests: the five and the one that checked B knew the key.
      for (const s of [a, b]) {
        await eventually(
          async () => {
            const l = await admin(s.url, "GET", "/admin/keys");
            const k = l.json.keys.find((k: { name: string }) => k.name === name);
            return k.usage.requests === 6 && k.usage.completionTokens >= 6 ? k : undefined;
          },
          5000,
          `usage on ${s.url}`,
        );
      }
    });

    it("a key revoked on A is refused on B within 3 s", async () => {
      const name = `rev-${uid()}`;
      const secret = await key(name, {});
      assert.equal((await chat(b.url, secret, "[[reply:ok]]")).status, 200);
      assert.equal((await admin(a.url, "DELETE", `/admin/keys/${name}`)).status, 200);
      const t0 = Date.now();
      await eventually(async () => (await chat(b.url, secret, "[[reply:ok]]")).status === 401, 3000, "B refuses");
      assert.ok(Date.now() - t0 <= 3000, `${Date.now() - t0} ms`);
      assert.equal((await chat(a.url, secret, "[[reply:ok]]")).status, 401);
      for (const s of [a, b]) {
        assert.ok(!s.output().includes(secret), "no secret in the log");
        s.assertPrivate();
      }
    });
  });
}
