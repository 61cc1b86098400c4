// A throwaway redis-server for the tests: found (or installed with apt as root), started on a free loopback port
// with no persistence in a temporary directory, stopped by its PID. Used by scripts/test.mjs and by tests.
import { spawn } from "node:child_process";
import { createConnection } from "node:net";
import { ensureExecutable, findExecutable, startService } from "./services.mjs";

/** The redis-server executable on PATH (or in the system directories), or undefined. */
export const findRedisServer = () => findExecutable("redis-server");

/**
 * Finds redis-server, installing Debian's package when it is missing and this is root with apt-get. Returns the
 * path, or undefined with the reason printed (the Redis tests then skip, saying so).
 */
export const ensureRedisServer = (log = console.log) =>
  ensureExecutable("redis-server", "redis-server", "install Debian's redis-server package to run the Redis tests", log);

/** Sends PING and resolves true on +PONG within `ms`. */
function ping(port, ms = 500) {
  return new Promise((resolve) => {
    const c = createConnection({ host: "127.0.0.1", port });
    const done = (ok) => {
      clearTimeout(timer);
      c.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    c.once("error", () => done(false));
    c.once("connect", () => c.write("PING\r\n"));
    c.once("data", (b) => done(b.toString().startsWith("+PONG")));
  });
}

/**
 * Starts redis-server on a free loopback port: no RDB snapshots, no AOF, its working directory a fresh temporary
 * one. Resolves { url, port, pid, stop } once it answers PING; `stop()` ends that PID only and removes the directory.
 * `port`: that port instead of a free one (0: any) (a test restarting "the same" server after stopping it).
 * `databases`: how many numbered databases it has (scripts/test.mjs gives each test process one of its own).
 */
export async function startRedis({ bin = findRedisServer(), timeoutMs = 10_000, port = 0, databases = 16 } = {}) {
  if (!bin) throw new Error("Cannot start Redis: redis-server is not installed");
  const args = (dir, port) => [
    ...["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    ...["--protected-mode", "yes", "--loglevel", "warning", "--databases", String(databases)],
  ];
  const r = await startService("redis-server", {
    launch: (dir, port) => spawn(bin, args(dir, port), { stdio: ["ignore", "ignore", "pipe"] }),
    ready: (port) => ping(port),
    timeoutMs,
    port,
  });
  return { url: `redis://127.0.0.1:${r.port}`, port: r.port, pid: r.pid, stop: r.stop };
}

// `node scripts/redis.mjs` starts one and prints REDIS_URL until Ctrl-C: handy for running a test file by hand.
if (import.meta.url === `file://${process.argv[1]}`) {
  const bin = ensureRedisServer();
  if (!bin) process.exit(1);
  const r = await startRedis({ bin });
  console.log(`REDIS_URL=${r.url} (pid ${r.pid}); Ctrl-C stops it`);
  const end = () => r.stop().then(() => process.exit(0));
  process.on("SIGINT", end);
  process.on("SIGTERM", end);
  setInterval(() => {}, 1 << 30);
}
