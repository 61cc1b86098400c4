// The clock and timers the chat use case waits on: the real ones at start-up, a fake one that tests advance.

/** Time and one-shot timers, injected so the watchdogs and waits can be tested without waiting. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` once after `ms`; the handle is for `clearTimeout`. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a pending timer; a handle that already fired, or undefined, is ignored. */
  clearTimeout(handle: unknown): void;
}

/** The runtime's own clock and timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout> | undefined),
};
