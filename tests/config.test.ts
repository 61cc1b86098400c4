import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ConfigError,
  HTTP_TIMEOUTS,
  loadConfig,
  MAX_BODY_BYTES,
  TOKEN_CHECK_LIMIT,
  UPSTREAM_LIMITS,
} from "../lib/config.ts";

describe("loadConfig", () => {
  it("has defaults for an empty environment", () => {
    const c = loadConfig({});
    assert.equal(c.port, 8000);
    assert.equal(c.host, "0.0.0.0");
    assert.equal(c.baseUrl, "https://ai-role.cn/echo-prod");
  });
  it("each default once, here: the constants the modules below are given, and the environment read only here", () => {
    const c = loadConfig({});
    assert.deepEqual(c.http, { ...HTTP_TIMEOUTS, maxConnections: undefined });
    assert.equal(c.maxBodyBytes, MAX_BODY_BYTES);
    assert.deepEqual(c.tokenCheckLimit, TOKEN_CHECK_LIMIT);
    assert.deepEqual(c.upstreamLimits, UPSTREAM_LIMITS);
    const j = loadConfig({ JOURNAL: "file", STATE_DIRECTORY: "/var/lib/a:/var/lib/b", XDG_STATE_HOME: "rel" }).journal;
    assert.deepEqual(j.given, ["JOURNAL"]);
    assert.deepEqual(j.directories, { stateDirectory: "/var/lib/a", xdgStateHome: undefined });
  });

  it("accepts the original's SERVER_PORT and SERVER_HOST; PORT and HOST win", () => {
    assert.equal(loadConfig({ SERVER_PORT: "9000" }).port, 9000);
    assert.equal(loadConfig({ SERVER_PORT: "9000", PORT: "9100" }).port, 9100);
    assert.equal(loadConfig({ SERVER_HOST: "127.0.0.1" }).host, "127.0.0.1");
  });
  it("names the variable of a bad value", () => {
    assert.throws(
      () => loadConfig({ PORT: "eighty" }),
      (e: unknown) => e instanceof ConfigError && /PORT/.test(e.message),
    );
    assert.throws(
      () => loadConfig({ EMOHAA_BASE_URL: "ftp://x" }),
      (e: unknown) => e instanceof ConfigError && /EMOHAA_BASE_URL/.test(e.message),
    );
    assert.throws(
      () => loadConfig({ LOG_LEVEL: "loud" }),
      (e: unknown) => e instanceof ConfigError && /LOG_LEVEL/.test(e.message),
    );
  });
  it("treats empty values as unset and trims the base URL's slash", () => {
    assert.equal(loadConfig({ PORT: "" }).port, 8000);
    assert.equal(loadConfig({ EMOHAA_BASE_URL: "http://x/echo-prod/" }).baseUrl, "http://x/echo-prod");
  });
  it("picks the upstream client: lib/upstream/http1.ts on every runtime, the runtime's fetch whenever a proxy is set", () => {
    assert.equal(loadConfig({}).upstreamClient, "http1");
    for (const proxy of ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]) {
      assert.equal(loadConfig({ [proxy]: "http://proxy:3128" }).upstreamClient, "fetch", proxy);
    }
    assert.equal(loadConfig({ HTTPS_PROXY: "" }).upstreamClient, "http1", "empty proxy");
    assert.equal(loadConfig({ UPSTREAM_CLIENT: "http1", HTTPS_PROXY: "http://proxy:3128" }).upstreamClient, "http1");
    assert.equal(loadConfig({ UPSTREAM_CLIENT: "fetch" }).upstreamClient, "fetch");
    assert.throws(
      () => loadConfig({ UPSTREAM_CLIENT: "curl" }),
      (e: unknown) => e instanceof ConfigError && /UPSTREAM_CLIENT/.test(e.message),
    );
  });
  it("bounds the upstream connect wait, 10 s by default", () => {
    assert.equal(loadConfig({}).upstreamConnectTimeoutMs, 10_000);
    assert.equal(loadConfig({ UPSTREAM_CONNECT_TIMEOUT_MS: "2500" }).upstreamConnectTimeoutMs, 2500);
    assert.throws(
      () => loadConfig({ UPSTREAM_CONNECT_TIMEOUT_MS: "0" }),
      (e: unknown) => e instanceof ConfigError && /UPSTREAM_CONNECT_TIMEOUT_MS/.test(e.message),
    );
  });
  it("loads the tokenizer on first use unless TOKENIZER_PRELOAD is set", () => {
    assert.equal(loadConfig({}).tokenizerPreload, false);
    assert.equal(loadConfig({ TOKENIZER_PRELOAD: "true" }).tokenizerPreload, true);
  });
  it("limits /token/check per client: 1 per minute, bursts of 10, unless set", () => {
    assert.deepEqual(loadConfig({}).tokenCheckLimit, { perMinute: 1, burst: 10 });
    assert.deepEqual(loadConfig({ TOKEN_CHECK_RATE: "6", TOKEN_CHECK_BURST: "20" }).tokenCheckLimit, {
      perMinute: 6,
      burst: 20,
    });
    assert.throws(
      () => loadConfig({ TOKEN_CHECK_RATE: "0" }),
      (e: unknown) => e instanceof ConfigError && /TOKEN_CHECK_RATE/.test(e.message),
    );
    assert.equal(loadConfig({}).trustProxy, false);
    assert.equal(loadConfig({ TRUST_PROXY: "true" }).trustProxy, true);
    assert.equal(loadConfig({}).metricsKey, undefined);
    assert.equal(loadConfig({ METRICS_KEY: "m" }).metricsKey, "m");
  });
  it("refuses anonymous server-side tokens open to every web page (ALLOW_ANONYMOUS with CORS_ORIGIN=*)", () => {
    const anon = { EMOHAA_TOKENS: "t", ALLOW_ANONYMOUS: "true" };
    for (const env of [anon, { ...anon, CORS_ORIGIN: " * " }]) {
      assert.throws(
        () => loadConfig(env),
        (e: unknown) => e instanceof ConfigError && /ALLOW_ANONYMOUS/.test(e.message) && /CORS_ORIGIN/.test(e.message),
      );
    }
    assert.equal(loadConfig({ ...anon, CORS_ORIGIN: "https://chat.example" }).allowAnonymous, true);
    // With gateway keys a web page needs a key anyway.
    assert.equal(loadConfig({ ...anon, API_KEYS: "k" }).corsOrigin, "*");
  });
  it("gateway keys: KEY_DEFAULT_* limit the keys of API_KEYS; KEYS_FILE; ADMIN_KEY alone may start a server", () => {
    assert.deepEqual(loadConfig({}).keys, { defaults: {}, file: undefined });
    assert.deepEqual(
      loadConfig({
        KEY_DEFAULT_RPM: "5",
        KEY_DEFAULT_CONCURRENCY: "0",
        KEY_DEFAULT_TOKENS_PER_DAY: "20000",
        KEYS_FILE: "/var/lib/emohaa/keys.json",
      }).keys,
      { defaults: { rpm: 5, concurrency: 0, tokensPerDay: 20000 }, file: "/var/lib/emohaa/keys.json" },
    );
    for (const [name, value] of [["KEY_DEFAULT_RPM", "-1"], ["KEY_DEFAULT_CONCURRENCY", "1.5"]]) {
      assert.throws(
        () => loadConfig({ [name!]: value }),
        (e: unknown) => e instanceof ConfigError && e.message.startsWith(`Invalid ${name}=`),
      );
    }
    // Without API_KEYS or ALLOW_ANONYMOUS the server holding tokens starts only with ADMIN_KEY, to create keys with.
    assert.throws(
      () => loadConfig({ EMOHAA_TOKENS: "t" }),
      (e: unknown) => e instanceof ConfigError && /ADMIN_KEY to create keys/.test(e.message),
    );
    const c = loadConfig({ EMOHAA_TOKENS: "t", ADMIN_KEY: "0123456789abcdef" });
    assert.deepEqual([c.apiKeys, c.allowAnonymous], [[], false]);
  });
  it("reads STATE: memory by default, Deno KV (by default or a local file), or a Redis URL; masks a password", () => {
    const d = loadConfig({}).state;
    assert.deepEqual(d, { kind: "memory", timeoutMs: 2000, leaseTtlMs: 15_000 });
    assert.deepEqual(loadConfig({ STATE: "kv" }).state, { kind: "kv", timeoutMs: 2000, leaseTtlMs: 15_000 });
    assert.equal((loadConfig({ STATE: "kv:/tmp/state.sqlite" }).state as { path?: string }).path, "/tmp/state.sqlite");
    const r =
      loadConfig({ STATE: "rediss://:pw@cache:6380/2", STATE_TIMEOUT_MS: "500", STATE_LEASE_TTL_MS: "1500" }).state;
    assert.deepEqual(r, { kind: "redis", url: "rediss://:pw@cache:6380/2", timeoutMs: 500, leaseTtlMs: 1500 });
    for (const bad of ["redis", "kv:", "postgres://x", "memcached"]) {
      assert.throws(
        () => loadConfig({ STATE: bad }),
        (e: unknown) => e instanceof ConfigError && /^Invalid STATE=/.test(e.message),
        bad,
      );
    }
    assert.throws(
      () => loadConfig({ STATE: "redis:/:secretpw@x" }),
      (e: unknown) => e instanceof ConfigError && !e.message.includes("secretpw"),
    );
    assert.throws(
      () => loadConfig({ STATE_TIMEOUT_MS: "10" }),
      (e: unknown) => e instanceof ConfigError && /STATE_TIMEOUT_MS/.test(e.message),
    );
    assert.throws(
      () => loadConfig({ STATE_LEASE_TTL_MS: "100" }),
      (e: unknown) => e instanceof ConfigError && /STATE_LEASE_TTL_MS/.test(e.message),
    );
  });
});
