// Benchmark support: child processes in their own process groups, their memory and CPU time from /proc, free ports.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { processTree } from "../tests/support/server.ts";

/** A child process started in its own process group, its output going to a log file. */
export interface Proc {
  pid: number;
  child: ChildProcess;
  /** Ends the whole group (e.g. `deno task` and the server it starts). */
  stop(): Promise<void>;
}

const live = new Set<Proc>();

/** Starts `command` detached (own process group), stdout and stderr appended to `log`. */
export function start(
  command: string[],
  options: { cwd: string; env: Record<string, string | undefined>; log: string },
): Proc {
  const fd = openSync(options.log, "a");
  const child = spawn(command[0]!, command.slice(1), {
    cwd: options.cwd,
    env: options.env as NodeJS.ProcessEnv,
    detached: true,
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const proc: Proc = {
    pid: child.pid!,
    child,
    async stop() {
      live.delete(proc);
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
      await exited;
    },
  };
  live.add(proc);
  return proc;
}

/** Ends every process group this benchmark started and has not stopped yet (on an error or Ctrl-C). */
export function stopAll(): void {
  for (const p of live) {
    try {
      process.kill(-p.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
}

/** Resident memory of a process tree, bytes. */
export function rss(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // ended
    }
  }
  return kb * 1024;
}

/** Resident memory of the tree's largest process, bytes (the server itself, without a task runner around it). */
export function serverRss(pid: number): number {
  let max = 0;
  for (const p of processTree(pid)) {
    try {
      max = Math.max(max, Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0) * 1024);
    } catch {
      // ended
    }
  }
  return max;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU time (user + system, all threads) a process tree has used so far, ms. */
export function cpuMs(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // ended
    }
  }
  return ticks * TICK_MS;
}

/**
 * Samples RSS every `ms` until stopped; returns the peaks of the whole tree and of its largest process (the server
 * itself, without a launcher such as `deno task` around it), each at its own moment.
 */
export function rssSampler(pid: number, ms = 50): { stop(): { tree: number; server: number } } {
  let tree = 0;
  let server = 0;
  const sample = () => {
    tree = Math.max(tree, rss(pid));
    server = Math.max(server, serverRss(pid));
  };
  sample();
  const timer = setInterval(sample, ms);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { tree, server };
    },
  };
}

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.once("error", reject);
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
