// The crash journal: conversations created and not yet deleted, naming the token by pool position, never by value.
import type { ConversationJournal } from "./conversations.ts";
import { tokenHash } from "./pool.ts";

/** One conversation to delete after a crash: the server-side token's position in the pool and its hash. */
export interface JournalEntry {
  cid: string;
  index: number;
  /** SHA-256 of the token, so a reordered token list still finds the right one. */
  hash: string;
}

/** Where entries live: a file by default, Deno KV where there is no disk. */
export interface JournalStore {
  load(): Promise<JournalEntry[]>;
  add(entry: JournalEntry): void | Promise<void>;
  remove(cid: string): void | Promise<void>;
  /** Called at a clean shutdown, after every conversation was deleted. */
  end?(): void;
}

/**
 * Adapts a store to the Conversations hooks. Only server-side tokens are journalled: a token a client sent is
 * not in `tokens()`, so it is never written anywhere. Store failures are reported, never thrown into a request.
 */
export function journalFor(
  store: JournalStore,
  tokens: () => readonly string[],
  onError: (err: unknown) => void,
): ConversationJournal {
  const guard = (f: () => void | Promise<void>) => {
    try {
      const r = f();
      if (r) r.catch(onError);
    } catch (err) {
      onError(err);
    }
  };
  return {
    created(token, cid) {
      const index = tokens().indexOf(token);
      if (index < 0) return;
      guard(() => store.add({ cid, index, hash: tokenHash(token) }));
    },
    deleted(token, cid) {
      if (tokens().includes(token)) guard(() => store.remove(cid));
    },
  };
}

/**
 * Finds the token of each entry: by position when the hash still matches, else by hash anywhere in the list.
 * Entries whose token is gone are returned apart: nothing can delete them.
 */
export function resolveEntries(
  entries: readonly JournalEntry[],
  tokens: readonly string[],
): { found: { token: string; cid: string }[]; orphaned: JournalEntry[] } {
  const byHash = new Map(tokens.map((t) => [tokenHash(t), t]));
  const found: { token: string; cid: string }[] = [];
  const orphaned: JournalEntry[] = [];
  for (const e of entries) {
    const atIndex = tokens[e.index];
    const token = atIndex !== undefined && tokenHash(atIndex) === e.hash ? atIndex : byHash.get(e.hash);
    if (token) found.push({ token, cid: e.cid });
    else orphaned.push(e);
  }
  return { found, orphaned };
}

/**
 * A journal file's lines, written by runtime/journal.ts and read back by `replayJournal`: the one place their format
 * lives. `+ index hash cid` when a conversation is created, `- cid` when it is deleted.
 */
export const journalLine = {
  add: (e: JournalEntry) => `+ ${e.index} ${e.hash} ${e.cid}\n`,
  remove: (cid: string) => `- ${cid}\n`,
};

/** Replays a journal file's lines (see `journalLine`) into the entries still open. */
export function replayJournal(text: string): JournalEntry[] {
  const open = new Map<string, JournalEntry>();
  for (const line of text.split("\n")) {
    const parts = line.trim().split(" ");
    if (parts[0] === "+" && parts.length === 4 && /^\d+$/.test(parts[1]!)) {
      open.set(parts[3]!, { index: Number(parts[1]), hash: parts[2]!, cid: parts[3]! });
    } else if (parts[0] === "-" && parts.length === 2) open.delete(parts[1]!);
  }
  return [...open.values()];
}
