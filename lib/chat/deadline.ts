// A time limit on one upstream call: a signal that aborts after a while and is released when the call settles.
import { timedOut } from "../errors.ts";
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
  const timer = clock.setTimeout(() => ac.abort(timedOut(what)), ms);
  try {
    return await call(ac.signal);
  } finally {
    clock.clearTimeout(timer);
  }
}

/**
 * Runs a call within `ms`: by the callee's own deadline when it keeps one (`kept`: an EmohaaClient that `timesOut`,
 * no signal or timer here), else by withDeadline's signal. Either way a call past its time fails with a TimeoutError
 * ("The `what` timed out").
 */
export function within<T>(
  kept: boolean | undefined,
  ms: number,
  what: string,
  call: (signal: AbortSignal | undefined, timeoutMs: number | undefined) => Promise<T>,
  clock: Clock = systemClock,
): Promise<T> {
  return kept ? call(undefined, ms) : withDeadline(ms, what, (signal) => call(signal, undefined), clock);
}
