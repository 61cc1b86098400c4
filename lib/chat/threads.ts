// Native multi-turn: the upstream conversations kept between turns, found again by a digest of their transcript.
//
// After a reply, the conversation is kept under two keys of the state store: a pointer from the digest of the
// transcript it now holds (model, every message, the reply as the client received it) to a handle, and the
// handle's record (cid, account by position and hash, holder, idle deadline). Message text is never stored: only
// the digest. A request whose history is that transcript plus new user messages claims the pointer with one
// compare-and-set, so a transcript continues at most once: a regenerated or edited turn, or a second client
// sending the same history, finds the pointer consumed and starts afresh. The instance that holds a conversation
// (the last to answer on it) deletes it after `idleMs` without a turn, at shutdown, or through the crash journal.
// With client tokens on a shared store nothing is journalled (a client's token is never written), so each kept
// conversation is also listed under its account's hash (lib/chat/orphans.ts): a later request with that token, on
// any instance, deletes those whose holder died (`sweep`).
import { createHash } from "node:crypto";
import type { OwnerStore, ValueStore, Versioned } from "../state/store.ts";
import type { Clock } from "./clock.ts";
import type { Conversations } from "./conversations.ts";
import { Orphans } from "./orphans.ts";
import { tokenHash } from "./pool.ts";
import { messageText, type PromptMessage } from "../openai/prompt.ts";

/** A kept conversation's record, under its handle. No text, no token: the account by position and hash. */
interface ThreadRecord {
  cid: string;
  index: number;
  hash: string;
  /** The instance holding it: it deletes it when idle, and journals it. */
  owner: string;
  /** The caller's scope and the digest of the transcript it holds (its pointer's key). */
  scope: string;
  digest: string;
  /** A turn is running on it (the pointer is consumed); `end` leaves the upstream deletion to that turn. */
  busy: boolean;
  /** Ended through `end`: kept as a tombstone so its holder knows it was deleted elsewhere. */
  ended?: boolean;
  /** Epoch milliseconds after which its holder deletes it. */
  idleUntil: number;
}

/**
 * A pointer from a transcript to its conversation; `consumed` once a turn claimed it (or two talks collided);
 * `evicted` when its conversation was deleted to stay within the caps (its next turn starts afresh, saying why).
 */
type Pointer = { handle: string } | { consumed: true } | { evicted: true };

/** A conversation claimed for the next turn. */
/**
 * How long a kept conversation waits, beyond its idle time, for the client to have the reply that kept it (the
 * answer's usage is counted after the keep, and the tokenizer's first load takes a while): then its idle time starts
 * (`Threads.touch`). A reply that never reached the client (it left) is deleted after both.
 */
export const DELIVERY_GRACE_MS = 30_000;

export interface Claimed {
  handle: string;
  token: string;
  cid: string;
  /** The record's version after the claim: keeping it again must find it unchanged. */
  version: string;
  /** The digest of the transcript the conversation held when claimed. */
  digest: string;
}

/** What this instance holds: timers of conversations between turns. */
interface Held {
  token: string;
  cid: string;
  timer?: unknown;
  /** A turn is running on it here. */
  active: boolean;
  /** Being deleted to stay within the caps: no longer counted. */
  evicting?: boolean;
}

export interface ThreadsOptions {
  /** Kept conversations are values; their sweep (lib/chat/orphans.ts) needs the owners too. */
  store: OwnerStore & ValueStore;
  conversations: Conversations;
  /** This instance's id (the store's owner id). */
  owner: string;
  /** A kept conversation without a turn this long is deleted. */
  idleMs: number;
  /**
   * Kept conversations this instance holds at most, per account and in all: past either, the least recently used
   * one between turns is deleted upstream as at idle, and its next turn starts afresh (`evicted`). Absent: no cap.
   */
  caps?: { perAccount: number; total: number };
  /** A conversation was deleted to stay within the caps (for the metrics). */
  onEvicted?: () => void;
  clock: Clock;
  /** Fresh random ids (handles). */
  id: () => string;
  /** The crash journal lives in the store under owners (shared STATE): a conversation taken over moves there. */
  sharedJournal: boolean;
  /** Aborted at shutdown: every conversation held between turns is deleted at once. */
  shutdown?: AbortSignal;
  /** A failed store call (the caller logs it once); it never reaches a request. */
  onError: (err: unknown) => void;
  /**
   * Client tokens on a shared store: list kept conversations per account, heartbeat while holding any, and let
   * `sweep` delete those whose holder is dead. Not with a shared journal, which covers server-side tokens.
   */
  sweep?: { deadAfterMs: number };
  /** A sweep deleted conversations of a dead holder (the caller logs it). */
  onSwept?: (deleted: number) => void;
}

/**
 * A kept conversation whose holder is alive but missed its idle deadline by this much is swept too (a holder whose
 * store calls kept failing): beyond clock skew and the holder's own retries.
 */
export const SWEEP_IDLE_MARGIN_MS = 120_000;

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** The digest of a transcript: model and each message's role and text. Order and every character count. */
export function transcriptDigest(model: string, messages: readonly PromptMessage[]): string {
  return sha256(JSON.stringify([model, ...messages.map((m) => [m.role, messageText(m.content)])]));
}

/**
 * The digest of a conversation continued by its handle with only new messages: the digest it held, then the turn's
 * own. It matches no transcript a client could send whole, so such a conversation continues only by handle.
 */
export function continuedDigest(held: string, model: string, messages: readonly PromptMessage[]): string {
  return sha256(JSON.stringify(["continued", held, transcriptDigest(model, messages)]));
}

/**
 * The caller's scope: a hash of its bearer (gateway key or token list), the account list and the `user` field, so
 * two callers never find each other's conversations.
 */
export function callerScope(bearer: string, tokens: readonly string[], user?: string): string {
  return sha256(JSON.stringify([bearer, tokens.map(tokenHash), user ?? ""])).slice(0, 40);
}

/**
 * Where a continuation would start: the messages after the last assistant reply, when they are all user messages.
 * Undefined when the history has no reply yet or ends otherwise (a fresh conversation then).
 */
export function splitContinuation(
  messages: readonly PromptMessage[],
): { transcript: readonly PromptMessage[]; added: readonly PromptMessage[] } | undefined {
  let last = -1;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]!.role === "assistant") {
      last = i;
      break;
    }
  }
  if (last < 0 || last === messages.length - 1) return undefined;
  const added = messages.slice(last + 1);
  if (!added.every((m) => m.role === "user")) return undefined;
  return { transcript: messages.slice(0, last + 1), added };
}

/** The token an account record names: by position when the hash still matches, else by hash. */
function findToken(tokens: readonly string[], index: number, hash: string): string | undefined {
  const at = tokens[index];
  if (at !== undefined && tokenHash(at) === hash) return at;
  return tokens.find((t) => tokenHash(t) === hash);
}

const pointerKey = (scope: string, digest: string) => ["thread", scope, digest] as const;
const recordKey = (handle: string) => ["thread-h", handle] as const;
/** A name of a conversation (a response id), hashed: the store holds no id a client could continue with. */
const nameKey = (name: string) => ["thread-n", sha256(name).slice(0, 40)] as const;

/** What a name points to: a conversation, and the transcript digest it held when named (its latest turn). */
export interface Named {
  handle: string;
  digest: string;
  /** Who named it, as the namer tells (e.g. a `callerScope` without `user`); not checked here. */
  caller?: string;
}

/** The kept conversations: claimed by transcript or handle, kept after a reply, deleted when idle or ended. */
export class Threads {
  private readonly held = new Map<string, Held>();
  /** Claims and keeps under way: they may name this instance as a holder, so its heartbeat must go on. */
  private claiming = 0;
  /** Store entries outlive the idle time by this much: their holder deletes them, the expiry is a backstop. */
  private readonly ttlMs: number;
  private readonly orphans?: Orphans;

  constructor(private readonly o: ThreadsOptions) {
    this.ttlMs = o.idleMs + 600_000;
    if (o.sweep) {
      // The index outlives the records: a record taken over mid-turn is rewritten later than its index entry.
      this.orphans = new Orphans({ ...o, deadAfterMs: o.sweep.deadAfterMs, ttlMs: 2 * this.ttlMs });
    }
    const shutdown = o.shutdown;
    if (shutdown) {
      if (shutdown.aborted) queueMicrotask(() => void this.endAll());
      else shutdown.addEventListener("abort", () => void this.endAll(), { once: true });
    }
  }

  /** Conversations this instance holds between turns or in a turn (for tests and metrics). */
  get size(): number {
    return this.held.size;
  }

  /** A handle for a new conversation. */
  newHandle(): string {
    return `conv-${this.o.id().replace(/[^A-Za-z0-9]/g, "").slice(0, 32)}`;
  }

  /**
   * Claims the conversation holding `transcript` in `scope`, for one turn. Undefined when there is none, it was
   * claimed already, or its account is not among `tokens`; "evicted" when it was deleted to stay within the caps.
   */
  async claim(scope: string, tokens: readonly string[], digest: string): Promise<Claimed | "evicted" | undefined> {
    const { store } = this.o;
    try {
      const key = pointerKey(scope, digest);
      const p = await store.get<Pointer>(key);
      if (p && "evicted" in p.value) return "evicted";
      if (!p || !("handle" in p.value)) return undefined;
      // Consumed, not deleted: the same transcript kept again later (a regenerated reply that came out the same)
      // must not become continuable by whoever sent it first. Consumed only once the record was found usable.
      const consume = async () =>
        (await store.cas<Pointer>(key, p.version, { consumed: true }, { expireInMs: this.ttlMs })) !== false;
      return await this.take(p.value.handle, tokens, (r) => r.scope === scope && r.digest === digest, consume);
    } catch (err) {
      this.o.onError(err);
      return undefined;
    }
  }

  /**
   * Claims a conversation by its handle for one turn (e.g. a Responses API `previous_response_id`): the caller
   * must hold its account, and with `expect` be of its scope and find it holding that digest (not moved on since).
   * Undefined when it is gone, busy, moved on, or not the caller's.
   */
  async claimHandle(
    handle: string,
    tokens: readonly string[],
    expect?: { scope: string; digest?: string },
  ): Promise<Claimed | undefined> {
    const fits = (r: ThreadRecord) =>
      !expect || (r.scope === expect.scope && (expect.digest === undefined || r.digest === expect.digest));
    try {
      const claimed = await this.take(handle, tokens, fits);
      if (claimed) {
        const r = await this.o.store.get<ThreadRecord>(recordKey(handle));
        const consumed: Pointer = { consumed: true };
        if (r) await this.o.store.set(pointerKey(r.value.scope, r.value.digest), consumed, { expireInMs: this.ttlMs });
      }
      return claimed;
    } catch (err) {
      this.o.onError(err);
      return undefined;
    }
  }

  private async take(
    handle: string,
    tokens: readonly string[],
    fits: (r: ThreadRecord) => boolean,
    consume?: () => Promise<boolean>,
  ): Promise<Claimed | undefined> {
    const { store, clock, owner } = this.o;
    const r = await store.get<ThreadRecord>(recordKey(handle));
    if (!r || r.value.ended || r.value.busy || !fits(r.value)) return undefined;
    const token = findToken(tokens, r.value.index, r.value.hash);
    if (!token) return undefined;
    // Written before the record names this instance, or a sweep elsewhere could take the holder for dead.
    const beating = this.orphans?.alive();
    this.claiming++;
    const { cid } = r.value;
    let here: Held | undefined;
    let version: string | null | false;
    try {
      if (consume && !(await consume())) return undefined;
      await beating;
      const taken: ThreadRecord = { ...r.value, owner, busy: true, idleUntil: clock.now() + this.o.idleMs };
      version = await store.cas(recordKey(handle), r.version, taken, { expireInMs: this.ttlMs });
      if (version === false || version === null) return undefined;
      here = this.held.get(handle);
      if (here) {
        this.o.clock.clearTimeout(here.timer);
        here.active = true;
      } else {
        // Taken over from another instance: it is ours to delete (and journal) from now on.
        this.o.conversations.created(token, cid);
        this.held.set(handle, { token, cid, active: true });
      }
    } finally {
      this.claiming--;
      this.quietIfIdle();
    }
    const previous = r.value.owner;
    if (previous !== owner) {
      if (here) this.o.conversations.journalAgain(token, cid);
      if (this.o.sharedJournal) await store.journalRemove(previous, cid).catch(this.o.onError);
    }
    return { handle, token, cid, version, digest: r.value.digest };
  }

  /**
   * Keeps a conversation after a reply the client received whole, under the digest of the transcript it now
   * holds. `claimed`: the claim of a continued turn (else a fresh conversation this instance created). False when
   * it cannot be kept (the same transcript is already kept, or the conversation was ended meanwhile): the caller
   * deletes it then. Never rejects.
   */
  async keep(k: {
    scope: string;
    tokens: readonly string[];
    handle: string;
    token: string;
    cid: string;
    digest: string;
    claimed?: Claimed;
  }): Promise<boolean> {
    const { store, clock, owner } = this.o;
    this.claiming++;
    // Listed at once, beside the writes below rather than after them (no added wait for the reply's last frames),
    // and awaited: a holder killed right after the reply leaves it listed. Unlisted again if it is not kept.
    const hash = tokenHash(k.token);
    let kept = false;
    const listed = this.orphans?.put(hash, k.handle, { cid: k.cid, owner, idleUntil: clock.now() + this.o.idleMs })
      .catch(this.o.onError);
    try {
      const key = pointerKey(k.scope, k.digest);
      if ((await store.cas<Pointer>(key, null, { handle: k.handle }, { expireInMs: this.ttlMs })) === false) {
        // Two talks with the same transcript (two clients, or a regenerated reply that came out the same): nobody
        // can tell whose next turn is whose, so neither is continued.
        const other = await store.get<Pointer>(key);
        await store.set<Pointer>(key, { consumed: true }, { expireInMs: this.ttlMs });
        if (other && "handle" in other.value && other.value.handle !== k.handle) {
          await this.end(other.value.handle, k.tokens);
        }
        this.forget(k.handle, false);
        return false;
      }
      await this.orphans?.alive();
      const index = k.tokens.indexOf(k.token);
      const record: ThreadRecord = {
        cid: k.cid,
        index,
        hash,
        owner,
        scope: k.scope,
        digest: k.digest,
        busy: false,
        idleUntil: clock.now() + this.o.idleMs,
      };
      const written = await store.cas(recordKey(k.handle), k.claimed?.version ?? null, record, {
        expireInMs: this.ttlMs,
      });
      if (written === false) {
        await store.delete(key);
        this.forget(k.handle, false);
        return false;
      }
      // Last in the map: the map's order is the least recently used first.
      let here = this.held.get(k.handle);
      if (here) this.held.delete(k.handle);
      this.held.set(k.handle, here ??= { token: k.token, cid: k.cid, active: false });
      here.active = false;
      // The idle time starts once the client has the reply (`touch`); until then, the answer's last work (its usage
      // counted) gets a grace, bounded.
      this.arm(k.handle, this.o.idleMs + DELIVERY_GRACE_MS);
      this.evictOverCaps(k.token);
      await listed;
      return kept = true;
    } catch (err) {
      this.o.onError(err);
      this.forget(k.handle, false);
      return false;
    } finally {
      if (!kept) void listed?.then(() => this.unlist(hash, k.handle));
      this.claiming--;
      this.quietIfIdle();
    }
  }

  /**
   * Names a kept conversation (a response id) as it is now, holding `named.digest`: `named` finds it by that name,
   * and `claimHandle` with that digest claims it until its next turn. The name lapses with the conversation's
   * records. Never rejects.
   */
  async name(name: string, named: Named): Promise<void> {
    try {
      await this.o.store.set<Named>(nameKey(name), named, { expireInMs: this.ttlMs });
    } catch (err) {
      this.o.onError(err);
    }
  }

  /** The conversation a name points to and the digest it held when named; undefined when unknown or lapsed. */
  async named(name: string): Promise<Named | undefined> {
    try {
      return (await this.o.store.get<Named>(nameKey(name)))?.value;
    } catch (err) {
      this.o.onError(err);
      return undefined;
    }
  }

  /**
   * Forgets a conversation this instance held (its turn failed or it could not be kept); deletes it upstream when
   * `deleteUpstream` (else the failed turn's reply already does). Never rejects.
   */
  forget(handle: string, deleteUpstream: boolean): void {
    const here = this.held.get(handle);
    if (!here) return;
    this.drop(handle, here, true);
    if (deleteUpstream) void this.o.conversations.delete(here.token, here.cid);
    void this.o.store.set(recordKey(handle), this.tomb(here.cid), { expireInMs: this.ttlMs }).catch(this.o.onError);
  }

  /**
   * What a record becomes once its conversation is deleted: an instance that held it earlier and still counts it
   * then lets it go instead of deleting it a second time.
   */
  private tomb(cid: string): ThreadRecord {
    return {
      cid,
      index: -1,
      hash: "",
      owner: this.o.owner,
      scope: "",
      digest: "",
      busy: false,
      ended: true,
      idleUntil: 0,
    };
  }

  /**
   * Ends a conversation by handle (DELETE /v1/conversations/{handle}, a collision): the caller must hold its
   * account. Resolves false when there is none the caller may end.
   */
  async end(handle: string, tokens: readonly string[]): Promise<boolean> {
    const { store, owner } = this.o;
    const r = await store.get<ThreadRecord>(recordKey(handle));
    if (!r || r.value.ended) return false;
    const token = findToken(tokens, r.value.index, r.value.hash);
    if (!token) return false;
    const tomb: ThreadRecord = { ...r.value, ended: true, owner };
    if ((await store.cas(recordKey(handle), r.version, tomb, { expireInMs: this.ttlMs })) === false) return false;
    await store.delete(pointerKey(r.value.scope, r.value.digest));
    // A turn running on it: its keep fails on the changed record, and its reply deletes the conversation.
    if (r.value.busy) return true;
    this.unlist(r.value.hash, handle);
    const here = this.held.get(handle);
    if (here) this.drop(handle, here, false);
    else {
      this.o.conversations.created(token, r.value.cid);
      if (this.o.sharedJournal) await store.journalRemove(r.value.owner, r.value.cid).catch(this.o.onError);
    }
    void this.o.conversations.delete(token, r.value.cid);
    return true;
  }

  /** Kept conversations this instance holds (evictions under way aside): the gauge of /metrics. */
  get kept(): number {
    let n = 0;
    for (const h of this.held.values()) if (!h.evicting) n++;
    return n;
  }

  /**
   * Deletes the least recently used conversations between turns while `token`'s account, or this instance, holds
   * more than its cap. One in a turn is never evicted (it counts, and its keep evicts another).
   */
  private evictOverCaps(token: string): void {
    const caps = this.o.caps;
    if (!caps) return;
    let account = 0;
    let total = 0;
    for (const h of this.held.values()) {
      if (h.evicting) continue;
      total++;
      if (h.token === token) account++;
    }
    for (const [handle, here] of this.held) {
      if (account <= caps.perAccount && total <= caps.total) return;
      if (here.active || here.evicting) continue;
      const mine = here.token === token;
      if (total <= caps.total && !mine) continue;
      here.evicting = true;
      total--;
      if (mine) account--;
      this.o.onEvicted?.();
      void this.deleteNow(handle, here, true);
    }
  }

  /** Stops holding a conversation; `deleted`: it is gone, so its account's index lets it go too. */
  private drop(handle: string, here: Held, deleted: boolean): void {
    this.held.delete(handle);
    this.o.clock.clearTimeout(here.timer);
    if (deleted) this.unlist(tokenHash(here.token), handle);
    this.quietIfIdle();
  }

  private unlist(hash: string, handle: string): void {
    this.orphans?.remove(hash, [handle]).catch(this.o.onError);
  }

  /** Holding nothing and claiming nothing: the heartbeat stops, and goes from the store. */
  private quietIfIdle(): void {
    if (!this.held.size && !this.claiming) this.orphans?.stop(true);
  }

  /** The client has the reply that kept `handle`: its idle time starts now. */
  touch(handle: string): void {
    const here = this.held.get(handle);
    if (here && !here.active) this.arm(handle, this.o.idleMs);
  }

  private arm(handle: string, ms: number): void {
    const here = this.held.get(handle);
    if (!here) return;
    this.o.clock.clearTimeout(here.timer);
    here.timer = this.o.clock.setTimeout(() => void this.idle(handle), Math.max(ms, 10));
    (here.timer as { unref?: () => void })?.unref?.();
  }

  /** The idle timer fired: delete the conversation if it is still ours and idle, else let it go. */
  private async idle(handle: string): Promise<void> {
    const here = this.held.get(handle);
    if (!here || here.active) return;
    try {
      await this.release(handle, here, false);
    } catch (err) {
      this.o.onError(err);
      this.arm(handle, Math.min(this.o.idleMs, 30_000));
    }
  }

  /**
   * Deletes a held conversation when this instance still holds it (idle, or `now`), or lets it go. `evicted`: its
   * transcript's pointer says so, and the next turn starts afresh saying why.
   */
  private async release(handle: string, here: Held, now: boolean, evicted = false): Promise<void> {
    const { store, clock, owner } = this.o;
    const r: Versioned<ThreadRecord> | null = await store.get<ThreadRecord>(recordKey(handle));
    if (r && (r.value.owner !== owner || r.value.cid !== here.cid || r.value.ended)) {
      // Another instance took it over, or ended it: it deletes it; this one only stops counting it.
      this.drop(handle, here, false);
      this.o.conversations.handedOver(here.token, here.cid);
      return;
    }
    if (r && !now && r.value.idleUntil > clock.now() + 5) return this.arm(handle, r.value.idleUntil - clock.now());
    if (
      r && (await store.cas(recordKey(handle), r.version, this.tomb(here.cid), { expireInMs: this.ttlMs })) === false
    ) {
      if (!now) this.arm(handle, 50);
      return;
    }
    if (r && evicted) {
      await store.set<Pointer>(pointerKey(r.value.scope, r.value.digest), { evicted: true }, {
        expireInMs: this.ttlMs,
      });
    } else if (r) await store.delete(pointerKey(r.value.scope, r.value.digest));
    // No record at all (a store that lost it): deleted anyway, as nobody else can know of it.
    if (this.held.get(handle) !== here) return;
    this.drop(handle, here, true);
    void this.o.conversations.delete(here.token, here.cid);
  }

  /**
   * Deletes the kept conversations of the accounts in `tokens` whose holder is dead (its heartbeat older than
   * `sweep.deadAfterMs`), or that missed their idle deadline by SWEEP_IDLE_MARGIN_MS: with client tokens, a
   * request's token in hand is the only way to delete them. Each account is looked at at most once per
   * `Orphans.everyMs` on this instance, so most requests cost no store call. Resolves how many were claimed for
   * deletion (callers do not wait: the deletions run in the background). Never rejects.
   */
  async sweep(tokens: readonly string[]): Promise<number> {
    const orphans = this.orphans;
    if (!orphans) return 0;
    const due = tokens.map((t) => [t, tokenHash(t)] as const).filter(([, h]) => orphans.due(h));
    const counts = await Promise.all(
      due.map(([token, hash]) =>
        this.sweepAccount(orphans, hash, token).catch((err) => {
          this.o.onError(err);
          return 0;
        })
      ),
    );
    const deleted = counts.reduce((a, b) => a + b, 0);
    if (deleted) this.o.onSwept?.(deleted);
    return deleted;
  }

  private async sweepAccount(orphans: Orphans, hash: string, token: string): Promise<number> {
    const { store, clock, owner } = this.o;
    const index = await orphans.read(hash);
    // Those this instance holds are its own timers' to delete.
    const handles = Object.keys(index ?? {}).filter((h) => !this.held.has(h));
    if (!handles.length) return 0;
    const records = await Promise.all(handles.map((h) => store.get<ThreadRecord>(recordKey(h))));
    const gone: string[] = [];
    const others: { handle: string; r: Versioned<ThreadRecord> }[] = [];
    records.forEach((r, i) => {
      const handle = handles[i]!;
      // No record: it expired, or (a recent entry) its keep is still writing it.
      if (!r) {
        if (index![handle]!.idleUntil + SWEEP_IDLE_MARGIN_MS < clock.now()) gone.push(handle);
      } else if (r.value.ended || r.value.hash !== hash) gone.push(handle);
      else if (r.value.owner !== owner) others.push({ handle, r });
    });
    const dead = new Set(
      others.length ? await orphans.deadAmong([...new Set(others.map((o) => o.r.value.owner))]) : [],
    );
    const now = clock.now();
    let deleted = 0;
    for (const { handle, r } of others) {
      if (!dead.has(r.value.owner) && r.value.idleUntil + SWEEP_IDLE_MARGIN_MS > now) continue;
      // One compare-and-set claims it: two sweeps, or a sweep and a turn, never both act on it. A holder that was
      // only slow finds the tombstone and lets it go, as after a takeover.
      const tomb = this.tomb(r.value.cid);
      if ((await store.cas(recordKey(handle), r.version, tomb, { expireInMs: this.ttlMs })) === false) continue;
      await store.delete(pointerKey(r.value.scope, r.value.digest));
      gone.push(handle);
      deleted++;
      void this.o.conversations.deleteLeftover(token, r.value.cid);
    }
    if (gone.length) await orphans.remove(hash, gone);
    for (const o of dead) await orphans.forgetDead(o);
    return deleted;
  }

  /** Shutdown: deletes every conversation held between turns (those in a turn are ended by their reply). */
  async endAll(): Promise<void> {
    await Promise.all(
      [...this.held].filter(([, h]) => !h.active).map(([handle, here]) => this.deleteNow(handle, here)),
    );
  }

  /** Deletes a held conversation now (shutdown, eviction); never rejects. `evicted`: see `release`. */
  private async deleteNow(handle: string, here: Held, evicted = false): Promise<void> {
    try {
      await this.release(handle, here, true, evicted);
    } catch (err) {
      this.o.onError(err);
      // The store is gone: the conversation is deleted anyway (its record lapses by itself).
      if (this.held.get(handle) === here) {
        this.drop(handle, here, false);
        void this.o.conversations.delete(here.token, here.cid);
      }
    }
  }
}
