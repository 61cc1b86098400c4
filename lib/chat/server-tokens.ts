// The server's own tokens as one list that changes without a restart: EMOHAA_TOKENS, EMOHAA_TOKENS_FILE (re-read
// whole, never half), and the admin API's changes, kept in the state store (sealed), the tokens file, or memory.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { ApiError, stateUnavailable } from "../errors.ts";
import { commaList, parseTokenList } from "../list.ts";
import type { ValueStore } from "../state/store.ts";
import { tokenHash, tokenLabel } from "./pool.ts";

/** Where a token of the list comes from. */
export type TokenOrigin = "env" | "file" | "admin";

/** Where the admin API's changes are kept: the shared state store, the tokens file, or this process's memory. */
export type Persistence = "state" | "file" | "memory";

/** The admin API's changes on top of the environment and the file: tokens added, hashes of tokens removed. */
export interface Overlay {
  added: string[];
  removed: string[];
}

/** One admin change: tokens to add, and the hashes of tokens to take out (a replacement is both at once). */
export interface TokenChange {
  add: readonly string[];
  remove: readonly string[];
}

export interface ServerTokensOptions {
  /** EMOHAA_TOKENS. */
  inline: readonly string[];
  /** EMOHAA_TOKENS_FILE. */
  file?: string;
  readFile(path: string): string;
  /** Replaces a file atomically (a temporary file renamed into place), private to the server's user. */
  writeFile?(path: string, text: string): void;
  /** The shared state store (STATE=kv or redis): the admin changes live there, sealed with `sealKey`. */
  store?: ValueStore;
  /** ADMIN_KEY: the key the store's copy is sealed with (AES-256-GCM); without it a shared store keeps none. */
  sealKey?: string;
  /** Whether a token can be sent upstream at all (lib/http/bearer.ts's rule). */
  isUsable(token: string): boolean;
  /** Operational messages; never a token, only counts and masked labels. */
  log: { info(message: string): void; error(message: string): void; debug(message: string): void };
  /** Called after the list changed. */
  onChange?(): void;
  /** How often the store's copy is read (default 2 s): every instance sees a change within this. */
  pollMs?: number;
}

/** The store key of the admin changes: one value, read by every instance. */
export const ADMIN_TOKENS_KEY = ["tokens", "admin"] as const;

/** Most removal hashes kept: a daily replacement adds one, so years of them fit. */
const MAX_REMOVED = 2_000;

/** The overlay after `change`: pure. A removed token's hash is kept so a token of the environment stays removed. */
export function applyChange(overlay: Overlay, change: TokenChange): Overlay {
  const gone = new Set(change.remove);
  const added = overlay.added.filter((t) => !gone.has(tokenHash(t)));
  const removed = overlay.removed.filter((h) => !gone.has(h));
  removed.push(...gone);
  for (const t of change.add) {
    const h = tokenHash(t);
    const i = removed.indexOf(h);
    if (i >= 0) removed.splice(i, 1);
    if (!added.includes(t)) added.push(t);
  }
  return { added, removed: removed.slice(-MAX_REMOVED) };
}

/**
 * A tokens file's text after `change`: lines holding a removed token lose it (comments stay), added tokens are
 * appended one per line. Pure.
 */
export function editTokenFile(text: string, change: TokenChange): string {
  const gone = new Set(change.remove);
  const lines: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const hash = line.indexOf("#");
    const body = hash >= 0 ? line.slice(0, hash) : line;
    const comment = hash >= 0 ? line.slice(hash) : "";
    const tokens = commaList(body);
    const kept = tokens.filter((t) => !gone.has(tokenHash(t)));
    if (kept.length === tokens.length) lines.push(line);
    else if (kept.length || comment) lines.push([kept.join(","), comment].filter(Boolean).join(" "));
  }
  while (lines.length && lines[lines.length - 1] === "") lines.pop();
  const present = new Set(parseTokenList(lines.join("\n")));
  for (const t of change.add) if (!present.has(t)) lines.push(t), present.add(t);
  return lines.join("\n") + "\n";
}

const sealingKey = (secret: string) => createHash("sha256").update(`emohaa-free-api admin tokens\n${secret}`).digest();

/** The overlay encrypted and authenticated (AES-256-GCM) for the store: nothing of a token is readable there. */
export function seal(overlay: Overlay, secret: string): { v: 1; sealed: string } {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", sealingKey(secret), iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(overlay), "utf8"), cipher.final()]);
  return { v: 1, sealed: Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64") };
}

/** The overlay back from `seal`; throws when it was sealed with another key or altered. */
export function unseal(value: unknown, secret: string): Overlay {
  const sealed = (value as { sealed?: unknown } | null)?.sealed;
  if (typeof sealed !== "string") throw new Error("not a sealed token list");
  const raw = Buffer.from(sealed, "base64");
  const decipher = createDecipheriv("aes-256-gcm", sealingKey(secret), raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  const text = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
  const o = JSON.parse(text) as Overlay;
  if (!Array.isArray(o.added) || !Array.isArray(o.removed)) throw new Error("not a token list");
  return { added: o.added.map(String), removed: o.removed.map(String) };
}

/**
 * The server-side token list. `list()` is what the pool lends from: the environment's tokens, the file's and the
 * admin API's additions, less its removals, each once. It is swapped whole: a request sees the old list or the
 * new one, never a mix.
 */
export class ServerTokens {
  readonly persistence: Persistence;
  private fileTokens: string[] = [];
  private overlay: Overlay = { added: [], removed: [] };
  private current: readonly string[] = [];
  private version: string | null = null;
  private pollTimer?: ReturnType<typeof setInterval>;
  private unreadable: string | null = null;
  private storeFailing = false;
  private fileChanged = false;
  private unwatch?: () => void;

  constructor(private readonly options: ServerTokensOptions) {
    this.persistence = options.store ? "state" : options.file && options.writeFile ? "file" : "memory";
    this.rebuild(false);
  }

  /** The tokens to lend from now. */
  list(): readonly string[] {
    return this.current;
  }

  /** Where a token of the list comes from (the environment wins over the file, the file over the admin API). */
  origin(token: string): TokenOrigin {
    if (this.options.inline.includes(token)) return "env";
    return this.fileTokens.includes(token) ? "file" : "admin";
  }

  private rebuild(notify = true): void {
    const removed = new Set(this.overlay.removed);
    const all = [...new Set([...this.options.inline, ...this.fileTokens, ...this.overlay.added])];
    const next = removed.size ? all.filter((t) => !removed.has(tokenHash(t))) : all;
    const changed = next.length !== this.current.length || next.some((t, i) => t !== this.current[i]);
    this.current = next;
    if (changed && notify) this.options.onChange?.();
  }

  /**
   * Reads EMOHAA_TOKENS_FILE whole and swaps its tokens in; resolves the size of the whole list. At start-up
   * (`initial`) any readable file is taken, an empty one too. Later (SIGHUP, the file watch) a file that cannot be
   * read, holds no token, or holds something that cannot be a token (a file caught half-written) keeps the old
   * list, and the error says why, naming no token.
   */
  reloadFile(initial = false): number {
    const path = this.options.file;
    if (!path) return this.current.length;
    let text: string;
    try {
      text = this.options.readFile(path);
    } catch (err) {
      throw new Error(`cannot read EMOHAA_TOKENS_FILE (${err instanceof Error ? err.name : "error"})`);
    }
    const tokens = parseTokenList(text);
    if (!initial && !tokens.length) throw new Error("EMOHAA_TOKENS_FILE holds no token");
    const bad = tokens.findIndex((t) => !this.options.isUsable(t));
    if (bad >= 0) {
      throw new Error(`EMOHAA_TOKENS_FILE entry ${bad + 1} is not a token (printable ASCII without spaces)`);
    }
    this.fileChanged = tokens.length !== this.fileTokens.length || tokens.some((t, i) => t !== this.fileTokens[i]);
    this.fileTokens = tokens;
    this.rebuild();
    return this.current.length;
  }

  /**
   * Re-reads EMOHAA_TOKENS_FILE after it changed on disk, once its events have been quiet for `debounceMs`: an
   * editor's or `cp`'s several writes are read once, after the last. `watch` is the runtime's (runtime/watch.ts).
   */
  watchFile(
    watch: (path: string, onChange: () => void, onError: (message: string) => void) => () => void,
    debounceMs = 250,
  ): void {
    const path = this.options.file;
    if (!path || this.unwatch) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const reload = () => {
      try {
        const n = this.reloadFile();
        if (this.fileChanged) this.options.log.info(`EMOHAA_TOKENS_FILE changed: ${n} server-side tokens now`);
      } catch (err) {
        this.options.log.error(`${err instanceof Error ? err.message : "cannot reload"}; keeping the old tokens`);
      }
    };
    const stop = watch(path, () => {
      clearTimeout(timer);
      timer = setTimeout(reload, debounceMs);
    }, (m) => this.options.log.error(m));
    this.unwatch = () => {
      clearTimeout(timer);
      stop();
    };
  }

  /**
   * Applies an admin change where this server keeps them: sealed in the state store (compare-and-set, so two
   * instances changing at once both count), the tokens file (rewritten atomically), or memory. Every instance
   * of a shared store sees it at its next poll; this one at once.
   */
  async apply(change: TokenChange): Promise<void> {
    if (this.persistence === "file") return this.applyToFile(change);
    if (this.persistence === "memory") {
      this.overlay = applyChange(this.overlay, change);
      return this.rebuild();
    }
    const { store, sealKey } = this.options;
    if (!sealKey) {
      throw new ApiError(403, "Set ADMIN_KEY: with a shared STATE it seals the token list in the store", {
        code: "admin_key_required",
      });
    }
    for (let i = 0; i < 5; i++) {
      let got;
      try {
        got = await store!.get(ADMIN_TOKENS_KEY);
      } catch (err) {
        throw storeDown(err);
      }
      const base = got ? this.readSealed(got.value, got.version) : { added: [], removed: [] };
      const next = applyChange(base, change);
      let written: string | null | false;
      try {
        written = await store!.cas(ADMIN_TOKENS_KEY, got?.version ?? null, seal(next, sealKey));
      } catch (err) {
        throw storeDown(err);
      }
      if (written === false) continue;
      this.overlay = next;
      this.version = written;
      return this.rebuild();
    }
    throw new ApiError(409, "The token list changed on another instance five times in a row; try again", {
      code: "conflict",
    });
  }

  private applyToFile(change: TokenChange): void {
    const path = this.options.file!;
    const fromEnv = change.remove.filter((h) => this.options.inline.some((t) => tokenHash(t) === h));
    if (fromEnv.length) {
      const t = this.options.inline.find((t) => tokenHash(t) === fromEnv[0])!;
      throw new ApiError(
        409,
        `Cannot remove token ${tokenLabel(t)}: it comes from EMOHAA_TOKENS, not EMOHAA_TOKENS_FILE; remove it there`,
        { code: "token_from_environment" },
      );
    }
    let text = "";
    try {
      text = this.options.readFile(path);
    } catch {
      // A file that disappeared is written anew from what this server holds.
      text = this.fileTokens.join("\n");
    }
    const next = editTokenFile(text, change);
    try {
      this.options.writeFile!(path, next);
    } catch (err) {
      throw new ApiError(500, `Cannot write EMOHAA_TOKENS_FILE (${err instanceof Error ? err.name : "error"})`, {
        code: "tokens_file_unwritable",
      });
    }
    this.fileTokens = parseTokenList(next);
    this.rebuild();
  }

  private readSealed(value: unknown, version: string): Overlay {
    try {
      const o = unseal(value, this.options.sealKey!);
      this.unreadable = null;
      return o;
    } catch {
      if (this.unreadable !== version) {
        this.unreadable = version;
        this.options.log.error(
          "cannot read the admin token list in the state store (sealed with another ADMIN_KEY?); it is ignored here",
        );
      }
      return { added: [], removed: [] };
    }
  }

  /** Reads the store's copy once and swaps it in when it changed (a no-op without a shared store or ADMIN_KEY). */
  async poll(): Promise<void> {
    const { store, sealKey } = this.options;
    if (!store || !sealKey) return;
    let got;
    try {
      got = await store.get(ADMIN_TOKENS_KEY);
    } catch (err) {
      if (!this.storeFailing) {
        this.options.log.error(
          `cannot read the admin token list from the state store (${
            err instanceof Error ? err.name : "error"
          }); keeping the last one`,
        );
      }
      this.storeFailing = true;
      return;
    }
    this.storeFailing = false;
    const version = got?.version ?? null;
    if (version === this.version) return;
    this.version = version;
    this.overlay = got ? this.readSealed(got.value, got.version) : { added: [], removed: [] };
    this.rebuild();
  }

  /** Starts polling the shared store (every `pollMs`); the first read is awaited. */
  async start(): Promise<void> {
    if (!this.options.store || !this.options.sealKey || this.pollTimer) return;
    await this.poll();
    this.pollTimer = setInterval(() => void this.poll(), this.options.pollMs ?? 2_000);
    // Polling alone must not keep a process alive.
    (this.pollTimer as { unref?: () => void }).unref?.();
  }

  /** Stops polling the store and watching the file. */
  stop(): void {
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    this.unwatch?.();
    this.unwatch = undefined;
  }
}

const storeDown = (cause: unknown) => stateUnavailable("the token list cannot be changed", cause);
