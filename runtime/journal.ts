// Journal stores: an append-only file (sync writes survive kill -9), or Deno KV where there is no disk.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { type JournalEntry, type JournalStore, replayJournal } from "../lib/journal.ts";

declare const Deno: any;

/** An append-only file: `+ index hash cid` when created, `- cid` when deleted; compacted on load. */
export function fileJournal(path: string): JournalStore {
  return {
    async load() {
      if (!existsSync(path)) return [];
      const entries = replayJournal(readFileSync(path, "utf8"));
      writeFileSync(path, entries.map((e) => `+ ${e.index} ${e.hash} ${e.cid}\n`).join(""), { mode: 0o600 });
      return entries;
    },
    add: (e: JournalEntry) => appendFileSync(path, `+ ${e.index} ${e.hash} ${e.cid}\n`, { mode: 0o600 }),
    remove: (cid: string) => appendFileSync(path, `- ${cid}\n`),
  };
}

/** Deno KV (on Deno Deploy, or `deno run --unstable-kv`): one key per open conversation. */
export async function kvJournal(): Promise<JournalStore> {
  if (typeof Deno === "undefined" || typeof Deno.openKv !== "function") throw new Error("Deno KV is not available on this runtime");
  const kv = await Deno.openKv();
  return {
    async load() {
      const out: JournalEntry[] = [];
      for await (const item of kv.list({ prefix: ["emohaa-journal"] })) out.push(item.value as JournalEntry);
      return out;
    },
    add: async (e: JournalEntry) => void (await kv.set(["emohaa-journal", e.cid], e)),
    remove: async (cid: string) => void (await kv.delete(["emohaa-journal", cid])),
  };
}
