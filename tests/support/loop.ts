// Test support: how long the event loop went without a turn while some work ran.
import { setImmediate } from "node:timers";

/** Runs `work` while a setImmediate ticker measures the longest time the event loop went without a turn. */
export async function loopGaps<T>(work: () => Promise<T>): Promise<{ result: T; longest: number; ticks: number }> {
  let ticks = 0;
  let longest = 0;
  let last = performance.now();
  let running = true;
  const tick = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    ticks++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const result = await work();
  running = false;
  tick();
  return { result, longest, ticks };
}
