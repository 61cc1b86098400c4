// End to end: the admin API of the server-side tokens against the real server process: its key, loopback-only
// without one, add/remove/replace with chats on the new tokens, the tokens file rewritten, two instances on Redis.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "redis";
import { tokenLabel } from "../../lib/chat/pool.ts";
import { runtimeName } from "../../runtime/serve.ts";
import { inSeconds, makeJwt } from "../support/jwt.ts";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, startServer } from "../support/server.ts";

const ADMIN = "key-admin-lifecycle-0001";
const uid = crypto.randomUUID().slice(0, 8);
const dir = mkdtempSync(join(tmpdir(), "emohaa-admin-"));
let sim: RunningSim;

before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Listed {
  persistence: string;
  tokens: { label: string; origin: string; expiresAt: string | null; state: string; inFlight: number }[];
}

/** One admin call; resolves the status and the JSON body. */
async function admin(
  url: string,
  method: string,
  path = "",
  body?: unknown,
  headers: Record<string, string> = { authorization: `Bearer ${ADMIN}` },
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/admin/tokens${path}`, {
    method,
    headers: { ...headers, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json() };
}

const chat = async (url: string, key: string) => {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
  });
  await res.text();
  return res.status;
};

const calls = (token: string) => sim.sim.state().callsByToken[token] ?? 0;
const label = (t: string) => tokenLabel(t).slice(1);

// `deno serve deploy.ts` runs as on Deno Deploy, without --allow-write: changes stay in memory there (tested below).
const command = process.env.E2E_COMMAND ?? "";
const writesFiles = !/\bserve\b/.test(command) || command.includes("--allow-write");

describe("admin API with ADMIN_KEY and a tokens file (e2e)", {
  skip: !writesFiles && "this way of running has no --allow-write",
}, () => {
  let server: RunningServer;
  const file = join(dir, "tokens.txt");
  const old = `live-adm-${uid}-old`;
  const exp = inSeconds(5 * 3600);
  const added = makeJwt({ exp, sub: "sub-claim-admin" });
  const newer = `live-adm-${uid}-newer`;
  before(async () => {
    writeFileSync(file, `# team accounts\n${old}\n`);
    server = await startServer({
      EMOHAA_BASE_URL: sim.baseUrl,
      EMOHAA_TOKENS_FILE: file,
      API_KEYS: "gk-admin-e2e",
      ADMIN_KEY: ADMIN,
    });
  });
  after(async () => {
    await server?.kill();
  });

  it("a missing or wrong key, or an API key instead of the admin key, is 401", async () => {
    assert.equal((await admin(server.url, "GET", "", undefined, {})).status, 401);
    const wrong = await admin(server.url, "GET", "", undefined, { authorization: "Bearer key-admin-wrong-000000" });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.code, "invalid_admin_key");
    const apiKey = await admin(server.url, "POST", "", { tokens: ["live-intruder-1"] }, {
      authorization: "Bearer gk-admin-e2e",
    });
    assert.equal(apiKey.status, 401);
    assert.equal((await admin(server.url, "GET")).body.tokens.length, 1, "nothing was added");
  });

  it("lists, adds, replaces and removes; chats use the new tokens; the file is rewritten privately", async () => {
    const listed = (await admin(server.url, "GET")).body as Listed;
    assert.equal(listed.persistence, "file");
    assert.deepEqual(listed.tokens.map((t) => [t.label, t.origin]), [[tokenLabel(old), "file"]]);

    const add = await admin(server.url, "POST", "", { tokens: [added] });
    assert.equal(add.status, 201);
    const entry = (add.body as Listed).tokens.find((t) => t.label === tokenLabel(added))!;
    assert.equal(entry.origin, "file");
    assert.equal(Date.parse(entry.expiresAt!), exp * 1000);
    const text = readFileSync(file, "utf8");
    assert.ok(text.startsWith("# team accounts\n") && text.includes(added), "comment kept, token appended");
    assert.equal(statSync(file).mode & 0o777, 0o600);

    // The old one out: every chat now goes to the added token.
    const removed = await admin(server.url, "DELETE", `/${label(old)}`);
    assert.equal(removed.status, 200);
    assert.deepEqual((removed.body as Listed).tokens.map((t) => t.label), [tokenLabel(added)]);
    const before = calls(old);
    for (let i = 0; i < 3; i++) assert.equal(await chat(server.url, "gk-admin-e2e"), 200);
    assert.equal(calls(old), before);
    assert.ok(calls(added) >= 3);

    // Replaced, by its label with the ellipsis (URL-encoded).
    const replaced = await admin(server.url, "PUT", `/${encodeURIComponent(tokenLabel(added))}`, { token: newer });
    assert.equal(replaced.status, 200);
    assert.deepEqual((replaced.body as Listed).tokens.map((t) => t.label), [tokenLabel(newer)]);
    const usedAdded = calls(added);
    assert.equal(await chat(server.url, "gk-admin-e2e"), 200);
    assert.equal(calls(added), usedAdded);
    assert.ok(calls(newer) >= 1);
    assert.deepEqual(readFileSync(file, "utf8").split("\n").filter(Boolean), ["# team accounts", newer]);

    assert.equal((await admin(server.url, "DELETE", "/zzzz")).status, 404);
    const bad = await admin(server.url, "POST", "", { tokens: ["has a space"] });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, "invalid_token");
    await eventually(() => sim.sim.state().open === 0, 10_000, "conversations deleted");
    server.assertPrivate();
    for (const t of [old, added, newer, ADMIN]) assert.ok(!server.output().includes(t));
  });
});

describe("admin API without ADMIN_KEY (e2e)", () => {
  let server: RunningServer;
  const inline = `live-adm-${uid}-inline`;
  before(async () => {
    server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, EMOHAA_TOKENS: inline, API_KEYS: "gk-admin-loop" });
  });
  after(async () => {
    await server?.kill();
  });

  it("answers this machine only: a forwarded request is 403; changes live in memory", async () => {
    const loop = await admin(server.url, "GET", "", undefined, {});
    assert.equal(loop.status, 200);
    assert.equal((loop.body as Listed).persistence, "memory");
    const proxied = await admin(server.url, "GET", "", undefined, { "x-forwarded-for": "203.0.113.9" });
    assert.equal(proxied.status, 403);
    assert.equal(proxied.body.error.code, "admin_disabled");

    const extra = `live-adm-${uid}-mem`;
    assert.equal((await admin(server.url, "POST", "", { tokens: [extra] }, {})).status, 201);
    // A token of EMOHAA_TOKENS can be taken out too (in memory): the chats go to the added one.
    assert.equal((await admin(server.url, "DELETE", `/${label(inline)}`, undefined, {})).status, 200);
    const before = calls(inline);
    assert.equal(await chat(server.url, "gk-admin-loop"), 200);
    assert.equal(calls(inline), before);
    assert.ok(calls(extra) >= 1);
    server.assertPrivate();
  });
});

const REDIS_URL = process.env.REDIS_URL;

const backends = [
  {
    name: "Redis",
    skip: !REDIS_URL && "REDIS_URL is not set (scripts/test.mjs starts a redis-server and sets it)",
    // A database of its own, emptied first: scripts/test.mjs gives each test process one of the redis-server it runs.
    state: async () => {
      const url = new URL(REDIS_URL ?? "redis://127.0.0.1");
      const redis = createClient({ url: url.href });
      await redis.connect();
      await redis.flushDb();
      await redis.quit();
      return url.href;
    },
    /** Every value the store holds, as text. */
    dump: async (state: string) => {
      const redis = createClient({ url: state });
      await redis.connect();
      try {
        const keys = await redis.keys("*");
        return (await Promise.all(keys.map(async (k) => {
          const type = await redis.type(k);
          if (type === "hash") return JSON.stringify(await redis.hGetAll(k));
          return type === "string" ? await redis.get(k) : "";
        }))).join("\n");
      } finally {
        await redis.quit();
      }
    },
  },
  {
    name: "Deno KV (one local file)",
    skip: runtimeName() !== "deno" && "Deno KV runs under Deno only",
    state: async () => `kv:${join(dir, `state-${crypto.randomUUID().slice(0, 8)}.sqlite`)}`,
    dump: async (state: string) => {
      const kv = await (globalThis as any).Deno.openKv(state.slice(3));
      try {
        const out: string[] = [];
        for await (const e of kv.list({ prefix: [] })) out.push(JSON.stringify(e.value));
        return out.join("\n");
      } finally {
        kv.close();
      }
    },
  },
];

for (const backend of backends) {
  describe(`admin API on two instances sharing ${backend.name} (e2e)`, { skip: backend.skip }, () => {
    let a: RunningServer;
    let b: RunningServer;
    let state: string;
    before(async () => {
      state = await backend.state();
      const env = {
        EMOHAA_BASE_URL: sim.baseUrl,
        EMOHAA_TOKENS: `live-adm-${uid}-base`,
        API_KEYS: "gk-admin-fleet",
        ADMIN_KEY: ADMIN,
        STATE: state,
        // What this tests is the admin API across instances, not the store's latency: on a machine busy with other
        // suites, two processes on one KV file can wait longer than the default 2 s for a lock, and fail closed.
        STATE_TIMEOUT_MS: "10000",
        JOURNAL: "off",
      };
      [a, b] = await Promise.all([startServer(env), startServer(env)]);
    });
    after(async () => {
      // As the shared-pool tests do: `deno serve` may wait on the store's connection after SIGTERM.
      await Promise.all([a?.kill("SIGKILL"), b?.kill("SIGKILL")]);
    });

    it("a token added on one instance is used by the other within seconds; a removal too; the store holds it sealed", async () => {
      const shared = `live-adm-${uid}-shared-${backend.name.slice(0, 5).replace(/\W/g, "")}`;
      const t0 = Date.now();
      const add = await admin(a.url, "POST", "", { tokens: [shared] });
      assert.equal(add.status, 201);
      assert.equal((add.body as Listed).persistence, "state");
      await eventually(
        async () => ((await admin(b.url, "GET")).body as Listed).tokens.some((t) => t.label === tokenLabel(shared)),
        5_000,
        "the other instance sees the token",
        50,
      );
      console.log(`${backend.name}: admin token seen by the other instance after ${Date.now() - t0} ms`);
      // Only the added token is left once the base one is removed on b; a's chats follow.
      assert.equal((await admin(b.url, "DELETE", `/${label(`live-adm-${uid}-base`)}`)).status, 200);
      await eventually(async () => ((await admin(a.url, "GET")).body as Listed).tokens.length === 1, 5_000, "removal");
      const before = calls(shared);
      assert.equal(await chat(a.url, "gk-admin-fleet"), 200);
      assert.equal(await chat(b.url, "gk-admin-fleet"), 200);
      assert.ok(calls(shared) >= before + 2, "both chats on the shared token");

      const values = await backend.dump(state);
      assert.ok(values.includes("sealed"), "the token list is in the store");
      assert.ok(!values.includes(shared) && !values.includes(`live-adm-${uid}`), "no token in the store in the clear");
      a.assertPrivate();
      b.assertPrivate();
    });
  });
}
