// A time limit on one upstream call: a signal that aborts after a while and is released when the call settles.
import { type Clock, systemClock } from "./clock.ts";

/**
 * Runs `call` with a signal that aborts with a TimeoutError ("The `what` timed out") after `ms`. The timer is
 * cleared as soon as the call settles: AbortSignal.timeout would keep every call's state until it fires.
 */
export async function withDeadline<T>(
  ms: number,
  what: string,
  call: (signal: AbortSignal) => Promise<T>,
  clock: Clock = systemClock,
): Promise<T> {
  const ac = new AbortController();
  const timer = clock.setTimeout(() => ac.abort(new DOMException(`The ${what} timed out`, "TimeoutError")), ms);
  try {
    return await call(ac.signal);
  } finally {
    clock.clearTimeout(timer);
  }
}
