// The gateway's life after wiring (lib/start.ts wires it): recovery from the crash journal, and the clean stop.
import type { Conversations } from "./chat/conversations.ts";
import { type JournalStore, resolveEntries } from "./chat/journal.ts";
import type { Pool } from "./chat/pool.ts";
import type { ServerTokens } from "./chat/server-tokens.ts";
import type { GatewayKeys } from "./chat/keys.ts";
import type { KeyLimiter } from "./chat/key-limits.ts";
import type { SharedJournal } from "./chat/shared-journal.ts";
import type { Threads } from "./chat/threads.ts";
import type { Logger } from "./http/log.ts";
import type { StateStore } from "./state/store.ts";

/** The wired parts the lifecycle acts on. */
export interface LifecycleParts {
  /** The shared journal (STATE not memory, server-side tokens), or none. */
  fleet?: SharedJournal;
  /** This instance's own journal (a file or KV), or none. */
  store?: JournalStore;
  serverTokens(): readonly string[];
  conversations: Conversations;
  pool: Pool;
  threads?: Threads;
  tokens?: ServerTokens;
  /** The gateway keys' list (polled) and their limits (usage written every second). */
  keys?: GatewayKeys;
  limits?: KeyLimiter;
  /** Aborted when the stop begins: what is still open ends with an error frame. */
  shutdown: AbortController;
  /** The upstream client's idle keep-alive connections, closed at the end. */
  closeUpstream?(): void;
  state: StateStore;
  logger: Logger;
}

export interface Lifecycle {
  /** Deletes what an earlier process (or a dead instance) left; how many. Never rejects. See Gateway.recover. */
  recover(): Promise<number>;
  /** Ends the crash journal: this instance leaves the shared one, or its own file goes. May throw. */
  endJournal(): Promise<void>;
  /** The clean shutdown (see Gateway.stop); later calls wait for the first. Never rejects. */
  stop(graceMs: number): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const until = async (done: () => boolean, ms: number) => {
  for (const end = Date.now() + ms; !done() && Date.now() < end;) await sleep(25);
};

export function lifecycle(p: LifecycleParts): Lifecycle {
  const { fleet, store, conversations, pool, logger } = p;
  let fleetStarted = false;
  const recover = async () => {
    if (fleet) {
      if (fleetStarted) return fleet.recover();
      fleetStarted = true;
      return fleet.start();
    }
    if (!store) return 0;
    try {
      const { found, orphaned } = resolveEntries(await store.load(), p.serverTokens());
      for (const e of orphaned) await store.remove(e.cid);
      await Promise.all(found.map((f) => conversations.deleteLeftover(f.token, f.cid)));
      if (found.length) logger.info(`deleted ${found.length} conversations left behind by an earlier process`);
      return found.length;
    } catch (err) {
      logger.error(`cannot read the crash journal: ${err instanceof Error ? err.name : "error"}`);
      return 0;
    }
  };
  const endJournal = async () => {
    if (fleet) await fleet.stop();
    else store?.end?.();
  };
  const stop = async (graceMs: number) => {
    await until(() => pool.active === 0 && pool.waiting === 0, graceMs);
    // What is still open ends with an error frame; its conversations, and those kept between turns, are deleted.
    p.shutdown.abort();
    await p.threads?.endAll();
    await until(() => conversations.open === 0, 15_000);
    await conversations.drain();
    try {
      await endJournal();
    } catch (err) {
      logger.error(`cannot remove the crash journal: ${err instanceof Error ? err.name : "error"}`);
    }
    // Leases still held lapse by their TTL anyway; closing frees the connection (Redis) or the KV handle.
    pool.close?.();
    p.tokens?.stop();
    p.keys?.stop();
    // The usage still added up here is written before the store closes.
    await p.limits?.stop().catch(() => {});
    // Idle keep-alive connections upstream: open, they would keep `deno serve` running after the shutdown.
    p.closeUpstream?.();
    // Bounded, and the bound's timer cleared after: `deno serve` (deploy.ts) ends only once no timer is pending.
    let bound: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([p.state.close().catch(() => {}), new Promise<void>((r) => bound = setTimeout(r, 2000))]);
    clearTimeout(bound);
    logger.info(`stopped; ${conversations.open} conversations left, ${conversations.deleteFailures} deletions failed`);
  };
  let stopped: Promise<void> | undefined;
  return { recover, endJournal, stop: (graceMs) => (stopped ??= stop(graceMs)) };
}
