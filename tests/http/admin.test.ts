// lib/http/admin.ts through the app (lib/start.ts wiring): who may call it, its OpenAPI security scheme, and logs.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { tokenLabel } from "../../lib/chat/pool.ts";
import { ConfigError, loadConfig } from "../../lib/config.ts";
import { start } from "../../lib/start.ts";
import { runtimeParts } from "../../runtime/parts.ts";
import { createSimulator } from "../../sim/simulator.ts";
import { simFetch } from "../support/sim.ts";

const ADMIN = "key-admin-unit-000000";

async function gateway(env: Record<string, string>) {
  const logs: string[] = [];
  const base = {
    EMOHAA_BASE_URL: "http://sim/echo-prod",
    UPSTREAM_CLIENT: "fetch",
    LOG_LEVEL: "debug",
    JOURNAL: "off",
  };
  const all = { ...base, ...env };
  const g = await start(all, { ...runtimeParts(), fetch: simFetch(createSimulator()) }, {
    logLine: (l) => logs.push(l),
  });
  const call = (path: string, remoteAddress?: string, init: RequestInit = {}) =>
    g.app.fetch(new Request(`http://127.0.0.1:8000${path}`, init), { remoteAddress });
  return { g, logs, call };
}

const serverEnv = { EMOHAA_TOKENS: "live-unit-1", API_KEYS: "gk-unit" };

describe("admin routes", () => {
  it("without ADMIN_KEY: loopback peers only, and not through a proxy", async () => {
    const { call } = await gateway(serverEnv);
    for (const peer of ["127.0.0.1", "::1", "::ffff:127.0.0.1"]) {
      assert.equal((await call("/admin/tokens", peer)).status, 200, peer);
    }
    for (const peer of ["192.0.2.7", "2001:db8::1", undefined]) {
      const res = await call("/admin/tokens", peer);
      assert.equal(res.status, 403, String(peer));
      assert.equal(((await res.json()) as any).error.code, "admin_disabled");
    }
    for (const h of ["x-forwarded-for", "forwarded", "x-real-ip"]) {
      assert.equal((await call("/admin/tokens", "127.0.0.1", { headers: { [h]: "203.0.113.1" } })).status, 403, h);
    }
    // A page in a browser on this machine: another site's Origin, or a name rebound to 127.0.0.1 as the Host.
    const add = (headers: Record<string, string>) =>
      call("/admin/tokens", "127.0.0.1", {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ tokens: ["live-unit-evil"] }),
      });
    assert.equal((await add({ origin: "https://evil.example" })).status, 403);
    assert.equal((await add({ host: "evil.example:8000", origin: "http://evil.example:8000" })).status, 403);
    assert.equal((await add({ host: "evil.example:8000" })).status, 403);
    // The playground served by this server: its own origin.
    assert.equal((await add({ host: "localhost:8000", origin: "http://localhost:8000" })).status, 201);
  });

  it("with ADMIN_KEY: the key from anywhere; an API key or none is 401, even from loopback", async () => {
    const { call, logs } = await gateway({ ...serverEnv, ADMIN_KEY: ADMIN });
    const as = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });
    assert.equal((await call("/admin/tokens", "192.0.2.7", as(ADMIN))).status, 200);
    assert.equal((await call("/admin/tokens", "127.0.0.1", as("gk-unit"))).status, 401);
    assert.equal((await call("/admin/tokens", "127.0.0.1")).status, 401);
    const added = await call("/admin/tokens", "192.0.2.7", {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ tokens: ["live-unit-2"] }),
    });
    assert.equal(added.status, 201);
    const body = (await added.json()) as any;
    assert.equal(body.persistence, "memory");
    assert.deepEqual(body.tokens.map((t: any) => [t.label, t.origin]), [
      [tokenLabel("live-unit-1"), "env"],
      [tokenLabel("live-unit-2"), "admin"],
    ]);
    // The status route of API-key holders sees the new token too.
    const status = await call("/v1/tokens/status", "192.0.2.7", as("gk-unit"));
    assert.equal(((await status.json()) as any).tokens.length, 2);
    const text = logs.join("\n");
    assert.ok(text.includes("POST /admin/tokens 201"));
    for (const secret of ["live-unit", ADMIN, "gk-unit"]) assert.ok(!text.includes(secret), secret);
  });

  it("are absent in client mode", async () => {
    const { call } = await gateway({});
    assert.equal((await call("/admin/tokens", "127.0.0.1")).status, 404);
  });

  it("are in the OpenAPI document under their own security scheme", async () => {
    const { call } = await gateway({ ...serverEnv, ADMIN_KEY: ADMIN });
    const doc = (await (await call("/openapi.json")).json()) as any;
    assert.equal(doc.components.securitySchemes.adminKey.scheme, "bearer");
    for (
      const [path, method] of [["/admin/tokens", "get"], ["/admin/tokens", "post"], ["/admin/tokens/{label}", "put"], [
        "/admin/tokens/{label}",
        "delete",
      ]]
    ) {
      assert.deepEqual(doc.paths[path!][method!].security, [{ adminKey: [] }], `${method} ${path}`);
    }
  });
});

describe("ADMIN_KEY", () => {
  it("is refused when it equals an API key or METRICS_KEY, or is short; the message never shows it", () => {
    const same = "key-admin-same-000000";
    for (
      const env of [
        { ...serverEnv, API_KEYS: `gk-unit,${same}`, ADMIN_KEY: same },
        { ...serverEnv, METRICS_KEY: same, ADMIN_KEY: same },
        { ...serverEnv, ADMIN_KEY: "key-short" },
      ]
    ) {
      assert.throws(() => loadConfig(env), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /^Invalid ADMIN_KEY="\*\*\*"/);
        assert.ok(!err.message.includes("key-"));
        return true;
      });
    }
    assert.equal(loadConfig({ ...serverEnv, ADMIN_KEY: ADMIN }).adminKey, ADMIN);
  });
});
