// Gateway keys: who may use a server that holds the Emohaa tokens, each key with its own limits. Keys of API_KEYS
// come from the environment; managed keys are created, changed and revoked at runtime (the admin API) and kept as
// one list (the shared state store, a file, or memory) that every instance reads every second. Only a key's
// SHA-256 is kept: its secret is shown once, when it is created.
import { createHash, randomBytes } from "node:crypto";
import { ApiError, stateUnavailable } from "../errors.ts";
import type { ValueStore } from "../state/store.ts";

/** A key's limits; an absent one is unlimited. */
export interface KeyLimits {
  /** Requests per minute (a UTC clock minute). */
  rpm?: number;
  /** Requests open at once, across every instance. */
  concurrency?: number;
  /** Estimated prompt plus completion tokens per UTC day. */
  tokensPerDay?: number;
}

/** A managed key as the list keeps it: never its secret, only its hash. */
export interface KeyRecord extends KeyLimits {
  /** Random; names the key's counters and leases in the state store, so a name used again starts afresh. */
  id: string;
  name: string;
  /** SHA-256 of the secret, hex. */
  hash: string;
  /** Epoch milliseconds after which the key is refused (401); absent: never. */
  expiresAt?: number;
  /** Epoch milliseconds. */
  createdAt: number;
}

/** A key a request presented: managed, or one of API_KEYS. */
export interface GatewayKey extends KeyLimits {
  id: string;
  /** What logs and metrics show: the managed key's name, or `env…3fa2` for a key of API_KEYS. */
  name: string;
  source: "admin" | "env";
  expiresAt?: number;
}

/** Where the managed keys are kept: the shared state store, KEYS_FILE, or this process's memory. */
export type KeyPersistence = "state" | "file" | "memory";

/** The managed keys' list as stored, with the version a write compares. */
export interface KeyListStore {
  readonly persistence: KeyPersistence;
  read(): Promise<{ records: KeyRecord[]; version: string | null }>;
  /**
   * Writes the list when its version is still `version` (null: never written): resolves the new version, or false
   * when it changed meanwhile.
   */
  write(records: KeyRecord[], version: string | null): Promise<string | false>;
}

/** The store key of the managed keys: one value every instance polls. */
export const KEYS_KEY = ["keys", "list"] as const;

/** Names: what logs, metrics and URLs show, so nothing that needs escaping. */
export const KEY_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** Most managed keys: GET /admin/keys reads every key's counters in one store call. */
export const MAX_KEYS = 500;

/** The secret's prefix, so a key is recognisable in a config file (and by secret scanners). */
export const KEY_PREFIX = "sk-emohaa-";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** A new secret: 32 random bytes, base64url. */
export function newSecret(): string {
  return KEY_PREFIX + randomBytes(32).toString("base64url");
}

/** The list in the state store (every instance shares it), or the memory store (one process). */
export function storeKeyList(store: ValueStore, persistence: "state" | "memory"): KeyListStore {
  return {
    persistence,
    async read() {
      const got = await store.get<{ keys: KeyRecord[] }>(KEYS_KEY);
      return { records: got?.value.keys ?? [], version: got?.version ?? null };
    },
    async write(records, version) {
      // `cas` resolves null only for a delete, which this never asks.
      return (await store.cas(KEYS_KEY, version, { keys: records })) as string | false;
    },
  };
}

/** The list in a JSON file (KEYS_FILE), for one process: replaced whole, atomically, private to the server's user. */
export function fileKeyList(
  path: string,
  io: { readFile(path: string): string; writeFile(path: string, text: string): void },
): KeyListStore {
  const load = (): { text: string | null; records: KeyRecord[] } => {
    let text: string;
    try {
      text = io.readFile(path);
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT" || (err as Error).name === "NotFound") {
        return { text: null, records: [] };
      }
      throw err;
    }
    const parsed = JSON.parse(text) as { keys?: KeyRecord[] };
    return { text, records: Array.isArray(parsed.keys) ? parsed.keys : [] };
  };
  return {
    persistence: "file",
    read() {
      const { text, records } = load();
      return Promise.resolve({ records, version: text === null ? null : sha256(text) });
    },
    write(records, version) {
      const { text } = load();
      if ((text === null ? null : sha256(text)) !== version) return Promise.resolve(false);
      const written = JSON.stringify({ keys: records }, null, 2) + "\n";
      io.writeFile(path, written);
      return Promise.resolve(sha256(written));
    },
  };
}

export interface KeysOptions {
  list: KeyListStore;
  /** API_KEYS: each is a key named `env…` + the last 4 hex digits of its SHA-256. */
  envKeys: readonly string[];
  /** The limits of the keys of API_KEYS (KEY_DEFAULT_RPM, KEY_DEFAULT_CONCURRENCY, KEY_DEFAULT_TOKENS_PER_DAY). */
  envLimits: KeyLimits;
  now(): number;
  /** How often the list is read again (default 1 s): a revoked key is refused everywhere within this. */
  pollMs?: number;
  /** Operational messages; never a secret. */
  log: { error(message: string): void };
}

/** What the admin API may change of a key. */
export interface KeyChange extends KeyLimits {
  /** An ISO time, or null to remove the expiry. */
  expiresAt?: number | null;
}

/** Changes of limits: a number sets one, null removes it (unlimited), absent leaves it. */
export type LimitsPatch = { [K in keyof KeyLimits]?: number | null } & { expiresAt?: number | null };

/** The server's gateway keys: found by secret without a store call, changed through the list. */
export class GatewayKeys {
  private byHash = new Map<string, GatewayKey>();
  private records: KeyRecord[] = [];
  private version: string | null = null;
  private readonly env: Map<string, GatewayKey>;
  private timer?: ReturnType<typeof setInterval>;
  private failing = false;

  constructor(private readonly options: KeysOptions) {
    this.env = new Map(options.envKeys.map((k) => {
      const hash = sha256(k);
      return [hash, {
        id: `env.${hash.slice(0, 24)}`,
        name: `env…${hash.slice(-4)}`,
        source: "env",
        ...options.envLimits,
      }];
    }));
    this.rebuild();
  }

  get persistence(): KeyPersistence {
    return this.options.list.persistence;
  }

  /** Whether any key exists, of API_KEYS or managed: then every request needs one. */
  get any(): boolean {
    return this.byHash.size > 0;
  }

  /** The key whose secret this is, or undefined. One hash and one map lookup: no store call. */
  find(secret: string): GatewayKey | undefined {
    return this.byHash.get(sha256(secret));
  }

  /** The keys of API_KEYS, as requests present them. */
  envList(): GatewayKey[] {
    return [...this.env.values()];
  }

  /** The managed keys, oldest first. */
  list(): readonly KeyRecord[] {
    return this.records;
  }

  /** A managed key by name (404 when there is none). */
  get(name: string): KeyRecord {
    const r = this.records.find((k) => k.name === name);
    if (!r) throw new ApiError(404, `No gateway key is named ${name}`, { code: "not_found", param: "name" });
    return r;
  }

  /** Creates a managed key: its record and its secret, which nothing keeps. 409 for a name in use. */
  async create(name: string, change: KeyChange): Promise<{ record: KeyRecord; secret: string }> {
    this.checkExpiry(change.expiresAt);
    const secret = newSecret();
    const record: KeyRecord = {
      id: randomBytes(12).toString("hex"),
      name,
      hash: sha256(secret),
      createdAt: this.options.now(),
      ...limitsOf(change),
      ...(change.expiresAt != null ? { expiresAt: change.expiresAt } : {}),
    };
    await this.change((records) => {
      if (records.some((k) => k.name === name)) {
        throw new ApiError(409, `A gateway key is already named ${name}`, { code: "name_taken", param: "name" });
      }
      if (records.length >= MAX_KEYS) {
        throw new ApiError(409, `There are ${MAX_KEYS} gateway keys already: revoke one first`, {
          code: "too_many_keys",
        });
      }
      return [...records, record];
    });
    return { record, secret };
  }

  /** Changes a managed key's limits or expiry; resolves the key after the change. */
  async update(name: string, patch: LimitsPatch): Promise<KeyRecord> {
    if (patch.expiresAt != null) this.checkExpiry(patch.expiresAt);
    let updated: KeyRecord | undefined;
    await this.change((records) => {
      const i = records.findIndex((k) => k.name === name);
      if (i < 0) throw new ApiError(404, `No gateway key is named ${name}`, { code: "not_found", param: "name" });
      const next: Record<string, unknown> = { ...records[i]! };
      for (const [k, v] of Object.entries(patch)) {
        if (v === null) delete next[k];
        else if (v !== undefined) next[k] = v;
      }
      updated = next as unknown as KeyRecord;
      return records.map((r, j) => (j === i ? updated! : r));
    });
    return updated!;
  }

  /** Revokes a managed key: refused at once here, and on every instance at its next read of the list. */
  async revoke(name: string): Promise<void> {
    await this.change((records) => {
      if (!records.some((k) => k.name === name)) {
        throw new ApiError(404, `No gateway key is named ${name}`, { code: "not_found", param: "name" });
      }
      return records.filter((k) => k.name !== name);
    });
  }

  /** Reads the list once and uses it; a failed read keeps the last one (and says so once). */
  async poll(): Promise<void> {
    let got;
    try {
      got = await this.options.list.read();
    } catch (err) {
      if (!this.failing) {
        this.options.log.error(
          `cannot read the gateway keys (${err instanceof Error ? err.name : "error"}); keeping the last list`,
        );
      }
      this.failing = true;
      return;
    }
    this.failing = false;
    if (got.version === this.version) return;
    this.records = got.records;
    this.version = got.version;
    this.rebuild();
  }

  /** Reads the list, then again every `pollMs`. */
  async start(): Promise<void> {
    await this.poll();
    if (this.options.list.persistence !== "state" || this.timer) return;
    this.timer = setInterval(() => void this.poll(), this.options.pollMs ?? 1_000);
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private checkExpiry(at: number | null | undefined): void {
    if (at != null && at <= this.options.now()) {
      throw new ApiError(400, "expiresAt must be in the future", { code: "invalid_value", param: "expiresAt" });
    }
  }

  /** Applies `edit` to the newest list with a compare-and-set, again when another writer came first. */
  private async change(edit: (records: KeyRecord[]) => KeyRecord[]): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      let got;
      try {
        got = await this.options.list.read();
      } catch (cause) {
        throw storeDown(cause);
      }
      const next = edit(got.records);
      let written: string | false;
      try {
        written = await this.options.list.write(next, got.version);
      } catch (cause) {
        throw storeDown(cause);
      }
      if (written !== false) {
        // Seen here at once, at the version written: the next poll reads nothing new.
        this.records = next;
        this.version = written;
        this.rebuild();
        return;
      }
    }
    throw new ApiError(503, "The gateway keys changed too often at once; retry", { code: "busy", retryAfter: 1 });
  }

  private rebuild(): void {
    const map = new Map(this.env);
    for (const r of this.records) {
      map.set(r.hash, {
        id: r.id,
        name: r.name,
        source: "admin",
        ...limitsOf(r),
        ...(r.expiresAt !== undefined ? { expiresAt: r.expiresAt } : {}),
      });
    }
    this.byHash = map;
  }
}

/** The limits a change or record sets (absent ones left out: unlimited). */
function limitsOf(x: KeyLimits): KeyLimits {
  const out: KeyLimits = {};
  if (x.rpm != null) out.rpm = x.rpm;
  if (x.concurrency != null) out.concurrency = x.concurrency;
  if (x.tokensPerDay != null) out.tokensPerDay = x.tokensPerDay;
  return out;
}

const storeDown = (cause: unknown) => stateUnavailable("the gateway keys cannot be changed", cause);
