// Warnings, once each, about server-side tokens running out: one under an hour from its JWT `exp`, none left valid.
import { Recent } from "../recent.ts";
import type { Clock } from "./clock.ts";
import { expiresAtMs } from "./expiry.ts";
import { tokenHash, tokenLabel } from "./pool.ts";

export interface ExpiryWatchOptions {
  /** The server-side tokens as they are now (the list may change at any time). */
  tokens(): readonly string[];
  clock: Clock;
  /** A token is near its end with less than this left (default one hour). */
  soonMs?: number;
  /** How often the tokens are looked at besides each `check` (default one minute). */
  everyMs?: number;
  /** A token near its end or past it: named by masked label and its `exp` only. */
  warn(message: string): void;
  /** No token left that is not known to be expired. */
  alarm(message: string): void;
}

/** A running watch: `check` looks at once (after the token list changed); `stop` ends its timer. */
export interface ExpiryWatch {
  check(): void;
  stop(): void;
}

const minutes = (ms: number) => Math.max(1, Math.round(ms / 60_000));

/**
 * Looks at the server-side tokens every `everyMs` and on `check`: each token whose JWT `exp` is less than `soonMs`
 * away (or past) is reported once in the process's life, by its masked label and its end; "none left valid" is
 * reported once, and again only after some valid token came back. Tokens without an `exp` count as valid.
 */
export function watchExpiry(options: ExpiryWatchOptions): ExpiryWatch {
  const soonMs = options.soonMs ?? 3_600_000;
  const everyMs = options.everyMs ?? 60_000;
  const { clock } = options;
  // A process may run for months with tokens replaced daily: the most recent 10,000-20,000 hashes (lib/recent.ts).
  const warned = new Recent<string, true>(10_000);
  let alarmed = false;
  let timer: unknown;
  let stopped = false;

  const check = () => {
    const now = clock.now();
    const tokens = options.tokens();
    let valid = 0;
    let lastEnd = 0;
    for (const t of tokens) {
      const at = expiresAtMs(t);
      if (at === undefined || at > now) valid++;
      if (at === undefined) continue;
      lastEnd = Math.max(lastEnd, at);
      if (at - now >= soonMs) continue;
      const h = tokenHash(t);
      if (warned.get(h)) continue;
      warned.remember(h, true);
      const end = new Date(at).toISOString();
      options.warn(
        at > now
          ? `warning: server-side token ${tokenLabel(t)} expires in ${minutes(at - now)} min (at ${end}); replace it`
          : `warning: server-side token ${tokenLabel(t)} expired at ${end}; it is skipped until replaced`,
      );
    }
    if (valid > 0) alarmed = false;
    else if (!alarmed) {
      alarmed = true;
      options.alarm(
        tokens.length
          ? `no valid server-side token left: every one expired, the last at ${
            new Date(lastEnd).toISOString()
          }; requests get 503 until tokens are replaced`
          : "no server-side token left: requests get 503 until tokens are added",
      );
    }
  };

  const tick = () => {
    if (stopped) return;
    check();
    timer = clock.setTimeout(tick, everyMs);
    // A warning timer alone must not keep a process (or a test run) alive.
    (timer as { unref?: () => void } | undefined)?.unref?.();
  };
  tick();
  return {
    check,
    stop() {
      stopped = true;
      clock.clearTimeout(timer);
    },
  };
}
