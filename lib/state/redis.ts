// The Redis backend (npm `redis`): every call is one round trip, a Lua script where it must check and write
// atomically; lease expiry by the server's clock; wake-ups by pub/sub on a second connection.
import { createHash } from "node:crypto";
import { createClient } from "redis";
import { Meter } from "./meter.ts";
import { redactUrls } from "../redact.ts";
import {
  type AccountHealth,
  checkKey,
  checkPart,
  type CountResult,
  type FreedListener,
  type JournalRecord,
  type Lease,
  LEASE_TTL_MS,
  OWNER_DEAD_AFTER_MS,
  type StateStore,
  StoreError,
  type StoreOptions,
  type ValueKey,
} from "./store.ts";
import { checkCounts, leaseId, writesCounter } from "./rules.ts";

export interface RedisStoreOptions extends StoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://...`. */
  url: string;
}

/** What this backend uses of a node-redis client; kept narrow so the client's large generic types stay out. */
interface RedisLike {
  connect(): Promise<unknown>;
  duplicate(): RedisLike;
  on(event: "error", listener: (err: Error) => void): unknown;
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  hmGet(key: string, fields: string[]): Promise<(string | null)[]>;
  hVals(key: string): Promise<string[]>;
  del(key: string): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  close(): Promise<void>;
  destroy(): void;
}

// The server's clock in milliseconds, so leases of instances with skewed clocks expire alike.
const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;
// A lease set lives as long as its longest lease (plus a second), so an abandoned account leaves nothing behind.
const KEEP =
  `local function keep(k) local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES') if top[2] then redis.call('PEXPIREAT', k, tonumber(top[2]) + 1000) end end`;

const SCRIPTS = {
  // KEYS: lease sets in preference order, then (health-aware) their health hashes. ARGV: perAccount, ttlMs, lease
  // id, health-aware (1/0). -> {index (0: none), expiresAt, then the taken account's c, e, f ('' when absent)}
  take: `${NOW} ${KEEP}
local cap, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local n, order, hs = #KEYS, {}, {}
if ARGV[4] == '1' then
  n = #KEYS / 2
  local later = {}
  for i = 1, n do
    hs[i] = redis.call('HMGET', KEYS[n + i], 'c', 'e', 'f')
    local c = tonumber(hs[i][1]) or 0
    if c > now then table.insert(later, {i, c}) else table.insert(order, i) end
  end
  table.sort(later, function(a, b) if a[2] == b[2] then return a[1] < b[1] end return a[2] < b[2] end)
  for _, x in ipairs(later) do table.insert(order, x[1]) end
else
  for i = 1, n do order[i] = i end
end
for _, i in ipairs(order) do
  local k = KEYS[i]
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  if redis.call('ZCARD', k) < cap then
    redis.call('ZADD', k, now + ttl, ARGV[3])
    keep(k)
    local h = hs[i] or {}
    return {i, now + ttl, h[1] or '', h[2] or '', h[3] or ''}
  end
end
return {0, now}`,
  // KEYS: the lease set. ARGV: lease id, channel, account. -> 1 when it was live
  free: `${NOW}
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
if tonumber(s) > now then return 1 end
return 0`,
  // KEYS: the lease set of each lease. ARGV: ttlMs, owner, then one lease id per key. -> ids lost
  renew: `${NOW} ${KEEP}
local ttl, owner, lost = tonumber(ARGV[1]), ARGV[2] .. '.', {}
for i, k in ipairs(KEYS) do
  local id = ARGV[i + 2]
  local s = redis.call('ZSCORE', k, id)
  if s and tonumber(s) > now and string.sub(id, 1, #owner) == owner then
    redis.call('ZADD', k, 'XX', now + ttl, id)
    keep(k)
  else
    table.insert(lost, id)
  end
end
return lost`,
  // KEYS: lease sets. -> live count per key
  count: `${NOW}
local out = {}
for i, k in ipairs(KEYS) do out[i] = redis.call('ZCOUNT', k, '(' .. now, '+inf') end
return out`,
  // KEYS: health hash. ARGV: kind, error, threshold, cooldownMs. -> {coolingUntil, lastError, fails}
  health: `${NOW}
local k, kind = KEYS[1], ARGV[1]
if kind == 'ok' then redis.call('DEL', k) return {0, '', 0} end
local h = redis.call('HMGET', k, 'c', 'e', 'f')
local c, f = tonumber(h[1]) or 0, tonumber(h[3]) or 0
if kind == 'cool' then c = now + tonumber(ARGV[4])
elseif kind == 'fail' then f = f + 1 if f >= tonumber(ARGV[3]) then c = now + tonumber(ARGV[4]) end end
redis.call('HSET', k, 'c', string.format('%d', c), 'e', ARGV[2], 'f', f)
redis.call('PEXPIRE', k, math.max(c - now, 0) + 86400000)
return {c, ARGV[2], f}`,
  // KEYS: health hashes. -> {c, e, f} per key ('' when absent)
  readHealth: `local out = {}
for i, k in ipairs(KEYS) do
  local h = redis.call('HMGET', k, 'c', 'e', 'f')
  out[i] = {h[1] or '', h[2] or '', h[3] or ''}
end
return out`,
  // KEYS: owner's journal hash, owners set, heartbeats hash. ARGV: owner, cid, record json.
  journalAdd: `${NOW}
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], now)
return 1`,
  // KEYS: owner's journal hash, owners set. ARGV: owner, cid.
  journalRemove: `redis.call('HDEL', KEYS[1], ARGV[2])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 1`,
  // KEYS: owners set. ARGV: journal key prefix. -> every record's json
  journalAll: `local out = {}
for _, o in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  for _, v in ipairs(redis.call('HVALS', ARGV[1] .. o)) do table.insert(out, v) end
end
return out`,
  // KEYS: heartbeats hash. ARGV: owner.
  heartbeat: `${NOW} redis.call('HSET', KEYS[1], ARGV[1], now) return 1`,
  // KEYS: owners set, heartbeats hash. ARGV: deadAfterMs. -> owners whose heartbeat is older or missing
  dead: `${NOW}
local out = {}
for _, o in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local b = tonumber(redis.call('HGET', KEYS[2], o))
  if not b or b < now - tonumber(ARGV[1]) then table.insert(out, o) end
end
return out`,
  // KEYS: heartbeats hash. ARGV: deadAfterMs, owners... -> those owners whose heartbeat is older or missing
  deadAmong: `${NOW}
local out = {}
for i = 2, #ARGV do
  local b = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  if not b or b < now - tonumber(ARGV[1]) then table.insert(out, ARGV[i]) end
end
return out`,
  // KEYS: owner's journal hash, owners set, heartbeats hash. ARGV: owner.
  forget:
    `redis.call('DEL', KEYS[1]) redis.call('SREM', KEYS[2], ARGV[1]) redis.call('HDEL', KEYS[3], ARGV[1]) return 1`,
  // KEYS: value hash, version counter. ARGV: json, expireInMs ('' for none). -> new version
  set: `local n = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'j', ARGV[1], 'n', n)
if ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) else redis.call('PERSIST', KEYS[1]) end
return tostring(n)`,
  // KEYS: value hash, version counter. ARGV: expected ('' = absent), json ('' = delete), expireInMs. -> version, '' or false
  cas: `local cur = redis.call('HGET', KEYS[1], 'n')
if ARGV[1] == '' then if cur then return false end elseif cur ~= ARGV[1] then return false end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) return '' end
local n = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'j', ARGV[2], 'n', n)
if ARGV[3] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) else redis.call('PERSIST', KEYS[1]) end
return tostring(n)`,
  // KEYS: the counters, one per op (a key may repeat). ARGV per op: by, below ('' for none), atLeast ('' for none),
  // expireInMs ('' when the op does not write). Every `below` is checked on the values before the call, then each
  // op adds `by` and raises to `atLeast` in order, and each counter written is set once with its expiry.
  // -> {refused index (-1: applied), then each op's value as a string}; {-2} when a counter would leave the safe
  // integers. Strings, as node-redis decodes integer replies near 2^53 inexactly (digit by digit, rounding).
  counters: `local cur, n = {}, #KEYS
local function values(first)
  local out = {first}
  for i = 1, n do out[i + 1] = string.format('%d', cur[KEYS[i]]) end
  return out
end
for i = 1, n do
  if cur[KEYS[i]] == nil then cur[KEYS[i]] = tonumber(redis.call('GET', KEYS[i])) or 0 end
end
for i = 1, n do
  local below = ARGV[4 * i - 2]
  if below ~= '' and cur[KEYS[i]] >= tonumber(below) then return values(i - 1) end
end
local ttl = {}
for i = 1, n do
  local k, by, least = KEYS[i], tonumber(ARGV[4 * i - 3]), ARGV[4 * i - 1]
  if by ~= 0 or least ~= '' then
    local v = cur[k] + by
    if least ~= '' then v = math.max(v, tonumber(least)) end
    if math.abs(v) > 9007199254740991 then return {-2} end
    cur[k], ttl[k] = v, ARGV[4 * i]
  end
end
for k, ms in pairs(ttl) do redis.call('SET', k, string.format('%d', cur[k]), 'PX', ms) end
return values(-1)`,
} as const;

const SHAS = Object.fromEntries(
  Object.entries(SCRIPTS).map(([k, src]) => [k, createHash("sha1").update(src).digest("hex")]),
) as Record<keyof typeof SCRIPTS, string>;

/**
 * Connects to Redis and resolves the store; rejects with an `unavailable` StoreError (naming the URL without its
 * password) when no connection is made within the timeout. Commands are never queued while the connection is
 * down: they reject at once, so a request never waits on a reconnect and a late command never takes a lease that
 * nobody would free.
 *
 * Round trips: one per call (EVALSHA, falling back to EVAL once per script after a server restart).
 *
 * A call that timed out may still run on the server later: a late `take` leaves a lease nobody renews, which
 * lapses within its TTL; a `free` that failed leaves the lease until its TTL. Neither outlives LEASE_TTL_MS.
 */
export async function redisStore(options: RedisStoreOptions): Promise<StateStore> {
  const meter = new Meter("redis", options.timeoutMs);
  const prefix = options.prefix ?? "emohaa";
  checkPart("connect", "prefix", prefix);
  // One hash tag: every key lands in one slot, so the multi-key scripts also run on a Redis Cluster.
  const p = `{${prefix}}`;
  const channel = `${p}:freed`;
  const leaseKey = (a: string) => `${p}:lease:${a}`;
  const healthKey = (a: string) => `${p}:health:${a}`;
  const journalKey = (o: string) => `${p}:journal:${o}`;
  const owners = `${p}:owners`;
  const beats = `${p}:beats`;
  const versions = `${p}:version`;
  const valueKey = (k: ValueKey) => `${p}:value:${k.join("/")}`;
  const counterKey = (k: ValueKey) => `${p}:count:${k.join("/")}`;

  const client = createClient({
    url: options.url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: meter.timeoutMs,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2_000),
    },
  }) as unknown as RedisLike;
  client.on("error", (err) => meter.event(`Redis connection: ${err.message}`));
  await connect(client, meter, options.url);
  let sub: Promise<RedisLike> | undefined;
  const listeners = new Set<FreedListener>();

  const run = async (name: keyof typeof SCRIPTS, keys: string[], args: (string | number)[]) => {
    const o = { keys, arguments: args.map(String) };
    try {
      return await client.evalSha(SHAS[name], o);
    } catch (err) {
      // A restarted or flushed server forgot its scripts: send the source once, it is cached again.
      if (err instanceof Error && err.message.startsWith("NOSCRIPT")) return client.eval(SCRIPTS[name], o);
      throw err;
    }
  };
  const parseHealth = (r: unknown): AccountHealth => {
    const [c, e, f] = r as [number | string, string, number | string];
    return { coolingUntil: Number(c) || 0, lastError: e || null, fails: Number(f) || 0 };
  };

  return {
    backend: "redis",

    take(req) {
      return meter.run("take a lease", async () => {
        checkPart("take a lease", "owner", req.owner);
        for (const a of req.accounts) checkPart("take a lease", "account", a);
        if (!req.accounts.length) return null;
        const id = leaseId(req.owner);
        const keys = req.accounts.map(leaseKey);
        if (req.skipCooling) keys.push(...req.accounts.map(healthKey));
        const r =
          (await run("take", keys, [req.perAccount, req.ttlMs ?? LEASE_TTL_MS, id, req.skipCooling ? 1 : 0])) as [
            number,
            number,
            ...(string | number)[],
          ];
        const [i, expiresAt] = r;
        if (!i) return null;
        const lease: Lease = { id, account: req.accounts[i - 1]!, owner: req.owner, expiresAt };
        if (!req.skipCooling) return lease;
        // One round trip: the health came back with the lease.
        return { ...lease, health: r[2] === "" ? null : parseHealth(r.slice(2)) };
      });
    },

    free(lease) {
      return meter.run(
        "free a lease",
        async () => (await run("free", [leaseKey(lease.account)], [lease.id, channel, lease.account])) === 1,
      );
    },

    renew(owner, refs, ttlMs = LEASE_TTL_MS) {
      return meter.run("renew leases", async () => {
        if (!refs.length) return [];
        return (await run("renew", refs.map((r) => leaseKey(r.account)), [
          ttlMs,
          owner,
          ...refs.map((r) => r.id),
        ])) as string[];
      });
    },

    inFlight(accounts) {
      return meter.run("count leases", async () => {
        if (!accounts.length) return new Map();
        const counts = (await run("count", accounts.map(leaseKey), [])) as number[];
        return new Map(accounts.map((a, i) => [a, Number(counts[i] ?? 0)]));
      });
    },

    onFreed(listener) {
      return meter.run("subscribe to frees", async () => {
        sub ??= (async () => {
          const s = client.duplicate();
          s.on("error", (err) => meter.event(`Redis subscriber: ${err.message}`));
          await s.connect();
          await s.subscribe(channel, (account) => {
            for (const l of listeners) l(account);
          });
          return s;
        })();
        sub.catch(() => (sub = undefined)); // the next subscriber tries again
        await sub;
        listeners.add(listener);
        return () => void listeners.delete(listener);
      });
    },

    reportHealth(account, update) {
      return meter.run("report health", async () => {
        checkPart("report health", "account", account);
        const u = update as { kind: string; error?: string; threshold?: number; cooldownMs?: number };
        return parseHealth(
          await run("health", [healthKey(account)], [u.kind, u.error ?? "", u.threshold ?? 0, u.cooldownMs ?? 0]),
        );
      });
    },

    readHealth(accounts) {
      return meter.run("read health", async () => {
        const out = new Map<string, AccountHealth>();
        if (!accounts.length) return out;
        const rows = (await run("readHealth", accounts.map(healthKey), [])) as [string, string, string][];
        accounts.forEach((a, i) => {
          const r = rows[i];
          if (r && r[0] !== "") out.set(a, parseHealth(r));
        });
        return out;
      });
    },

    journalAdd(record) {
      return meter.run("journal a conversation", async () => {
        checkPart("journal a conversation", "owner", record.owner);
        checkPart("journal a conversation", "conversation id", record.cid);
        const json = JSON.stringify({ owner: record.owner, cid: record.cid, index: record.index, hash: record.hash });
        await run("journalAdd", [journalKey(record.owner), owners, beats], [record.owner, record.cid, json]);
      });
    },

    journalRemove(owner, cid) {
      return meter.run(
        "remove a journal entry",
        async () => void (await run("journalRemove", [journalKey(owner), owners], [owner, cid])),
      );
    },

    journalList(owner) {
      return meter.run("list the journal", async () => {
        const rows = owner === undefined
          ? ((await run("journalAll", [owners], [`${p}:journal:`])) as string[])
          : await client.hVals(journalKey(owner));
        return rows.map((r) => JSON.parse(r) as JournalRecord);
      });
    },

    heartbeat(owner) {
      return meter.run("write a heartbeat", async () => {
        checkPart("write a heartbeat", "owner", owner);
        await run("heartbeat", [beats], [owner]);
      });
    },

    deadOwners(deadAfterMs = OWNER_DEAD_AFTER_MS) {
      return meter.run("find dead owners", async () => (await run("dead", [owners, beats], [deadAfterMs])) as string[]);
    },

    deadAmong(list, deadAfterMs = OWNER_DEAD_AFTER_MS) {
      return meter.run("check owners", async () => {
        for (const o of list) checkPart("check owners", "owner", o);
        if (!list.length) return [];
        return (await run("deadAmong", [beats], [deadAfterMs, ...list])) as string[];
      });
    },

    forgetOwner(owner) {
      return meter.run(
        "forget an owner",
        async () => void (await run("forget", [journalKey(owner), owners, beats], [owner])),
      );
    },

    get(key) {
      return meter.run("get a value", async () => {
        checkKey("get a value", key);
        const [j, n] = await client.hmGet(valueKey(key), ["j", "n"]);
        return j == null || n == null ? null : { value: JSON.parse(j), version: n };
      });
    },

    set(key, value, opts) {
      return meter.run("set a value", async () => {
        checkKey("set a value", key);
        return String(
          await run("set", [valueKey(key), versions], [json("set a value", value), opts?.expireInMs ?? ""]),
        );
      });
    },

    delete(key) {
      return meter.run("delete a value", async () => {
        checkKey("delete a value", key);
        await client.del(valueKey(key));
      });
    },

    cas(key, expected, value, opts) {
      return meter.run("compare and set a value", async () => {
        checkKey("compare and set a value", key);
        const r = await run("cas", [valueKey(key), versions], [
          expected ?? "",
          value === null ? "" : json("compare and set a value", value),
          opts?.expireInMs ?? "",
        ]);
        if (r === null || r === false) return false;
        return r === "" ? null : String(r);
      });
    },

    count(ops) {
      return meter.run("count", async (): Promise<CountResult> => {
        checkCounts("count", ops);
        if (!ops.length) return { values: [], refused: -1 };
        const r = (await run(
          "counters",
          ops.map((o) => counterKey(o.key)),
          ops.flatMap((o) => [
            o.by ?? 0,
            o.below ?? "",
            o.atLeast ?? "",
            writesCounter(o) ? o.expireInMs! : "",
          ]),
        )) as [number, ...string[]];
        if (r[0] === -2) {
          throw new StoreError("invalid", "count", "Cannot count: a counter would go past the safe integers");
        }
        return { values: r.slice(1).map(Number), refused: Number(r[0]) };
      });
    },

    health: () => meter.health(),

    async close() {
      if (meter.isClosed) return;
      meter.close();
      listeners.clear();
      const s = await sub?.catch(() => undefined);
      await Promise.all([client, s].filter((c): c is RedisLike => !!c).map((c) => quit(c, meter.timeoutMs)));
    },
  };
}

function json(op: string, value: unknown): string {
  const s = JSON.stringify(value);
  if (s === undefined) throw new StoreError("invalid", op, `Cannot ${op}: the value is not JSON`);
  return s;
}

/**
 * How long the first connection may take: at least this, or the meter's timeout when longer. A process starting
 * cold (loading the client, a TLS handshake to a managed Redis, a machine busy starting several instances) may need
 * more than one call's bound; an unreachable store still stops the start within it.
 */
export const CONNECT_AT_START_MS = 5_000;

/** Connects within CONNECT_AT_START_MS (or the meter's timeout), or destroys the client and rejects `unavailable`. */
async function connect(client: RedisLike, meter: Meter, url: string): Promise<void> {
  const bound = Math.max(meter.timeoutMs, CONNECT_AT_START_MS);
  try {
    await meter.run("connect", () => client.connect(), "unavailable", bound);
  } catch (err) {
    client.destroy();
    const why = err instanceof StoreError && err.code === "timeout"
      ? `no answer within ${bound} ms`
      : err instanceof Error
      ? err.message
      : String(err);
    throw new StoreError("unavailable", "connect", `Cannot connect to Redis at ${redactUrls(url)}: ${why}`, {
      cause: err,
    });
  }
}

/** Closes politely, or destroys the connection when the server does not answer in time. */
async function quit(c: RedisLike, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), ms)));
  const r = await Promise.race([c.close().catch(() => undefined), late]);
  clearTimeout(timer);
  if (r === "late") c.destroy();
}
