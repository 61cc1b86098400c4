// Test support: how long the event loop went without a turn while some work ran.
import { setImmediate } from "node:timers";

/** Milliseconds of CPU this process has used (user and system), which other processes' load does not inflate. */
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/**
 * Runs `work` while a setImmediate ticker measures the longest time the event loop went without a turn.
 * `longest` is that gap in CPU time: the work this process did between two turns. On a machine busy with other
 * processes the wall-clock gap (`longestWall`) also counts the time the scheduler gave to them, which says nothing
 * about this code; the CPU gap is the same on a quiet machine and on a loaded one.
 */
export async function loopGaps<T>(
  work: () => Promise<T>,
): Promise<{ result: T; longest: number; longestWall: number; ticks: number }> {
  let ticks = 0;
  let longest = 0;
  let longestWall = 0;
  let last = performance.now();
  let lastCpu = cpuMs();
  let running = true;
  const tick = () => {
    const now = performance.now();
    const cpu = cpuMs();
    longestWall = Math.max(longestWall, now - last);
    longest = Math.max(longest, cpu - lastCpu);
    last = now;
    lastCpu = cpu;
    ticks++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const result = await work();
  running = false;
  tick();
  return { result, longest, longestWall, ticks };
}

/**
 * How long a `setTimeout(ms)` takes now, in wall time: the baseline a test bounds a timeout-driven duration against,
 * measured in the same test, so that a machine busy with other processes (timers fire late) moves the bound too.
 */
export async function timerBaseline(ms: number): Promise<number> {
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  return performance.now() - t0;
}
