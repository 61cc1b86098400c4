// The conversations this process created: each deleted exactly once, with retries, and journalled if asked.
import type { EmohaaClient } from "../upstream/emohaa.ts";
import { within } from "./deadline.ts";
import { UpstreamError } from "../upstream/errors.ts";

/** Told of each conversation created and deleted, so one left behind by a crash can be deleted on restart. */
export interface ConversationJournal {
  created(token: string, cid: string): void;
  deleted(token: string, cid: string): void;
}

/** Tracks open conversations and deletes them in the background, retrying with backoff. */
export class Conversations {
  open = 0;
  deleteFailures = 0;
  private readonly pending = new Set<Promise<boolean>>();

  constructor(
    private readonly client: EmohaaClient,
    private readonly sleep: (ms: number) => Promise<void>,
    private readonly retryDelaysMs: readonly number[] = [200, 1000, 3000],
    private readonly journal?: ConversationJournal,
    /** A deletion gave up: why (the failure's kind, never a cid or a token) and after how many attempts. */
    private readonly onGiveUp?: (reason: string, attempts: number) => void,
  ) {}

  /** Records a conversation the upstream created; `delete` must follow exactly once. */
  created(token: string, cid: string): void {
    this.open++;
    this.journal?.created(token, cid);
  }

  /**
   * Stops counting a conversation another instance took over (native multi-turn): it deletes it, and journals it
   * under its own id, so this one's journal lets it go.
   */
  handedOver(token: string, cid: string): void {
    this.open--;
    this.journal?.deleted(token, cid);
  }

  /** Journals again a conversation this process counts, after another instance held it for a while. */
  journalAgain(token: string, cid: string): void {
    this.journal?.created(token, cid);
  }

  /** Deletes a conversation an earlier or a dead process left behind (found in the journal); true once deleted. */
  deleteLeftover(token: string, cid: string): Promise<boolean> {
    this.open++;
    return this.delete(token, cid);
  }

  /**
   * Deletes a conversation in the background, retrying with backoff; settles exactly once: true when deleted,
   * false when it gave up (counted in `deleteFailures`).
   */
  delete(token: string, cid: string): Promise<boolean> {
    const p = (async () => {
      for (let i = 0;; i++) {
        try {
          await within(
            this.client.timesOut,
            10_000,
            "delete request",
            (signal, ms) => this.client.deleteConversation(token, cid, signal, ms),
          );
          this.journal?.deleted(token, cid);
          return true;
        } catch (err) {
          // A token rejected now cannot delete later either; a journalled entry stays for the next start.
          const permanent = err instanceof UpstreamError && (err.kind === "auth" || err.kind === "protocol");
          if (permanent || i >= this.retryDelaysMs.length) {
            this.deleteFailures++;
            const reason = err instanceof UpstreamError ? err.kind : err instanceof Error ? err.name : "error";
            this.onGiveUp?.(reason, i + 1);
            return false;
          }
          await this.sleep(this.retryDelaysMs[i]!);
        }
      }
    })().finally(() => {
      this.open--;
      this.pending.delete(p);
    });
    this.pending.add(p);
    return p;
  }

  /** Resolves when every deletion started so far has settled. */
  async drain(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }
}
