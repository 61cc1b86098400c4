// A throwaway redis-server for the tests: found (or installed with apt as root), started on a free loopback port
// with no persistence in a temporary directory, stopped by its PID. Used by scripts/test.mjs and by tests.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

/** The redis-server executable on PATH (or in /usr/bin, /usr/sbin), or undefined. */
export function findRedisServer() {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/bin", "/usr/sbin", "/usr/local/bin"];
  return dirs.filter(Boolean).map((d) => join(d, "redis-server")).find((p) => existsSync(p));
}

/**
 * Finds redis-server, installing Debian's package when it is missing and this is root with apt-get. Returns the
 * path, or undefined with the reason printed (the Redis tests then skip, saying so).
 */
export function ensureRedisServer(log = console.log) {
  const found = findRedisServer();
  if (found) return found;
  const root = process.getuid?.() === 0;
  const apt = spawnSync("sh", ["-c", "command -v apt-get"], { encoding: "utf8" }).status === 0;
  if (!root || !apt) {
    log(
      `redis-server is not installed and cannot be installed here (${
        root ? "no apt-get" : "not root"
      }): install Debian's redis-server package to run the Redis tests`,
    );
    return undefined;
  }
  log("redis-server is missing: installing Debian's redis-server package");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [["update", "-qq"], ["install", "-y", "-qq", "--no-install-recommends", "redis-server"]]) {
    const r = spawnSync("apt-get", args, { env, encoding: "utf8" });
    if (r.status !== 0) {
      log(`apt-get ${args.join(" ")} failed: ${(r.stderr || r.stdout).trim().slice(-500)}`);
      return undefined;
    }
  }
  return findRedisServer();
}

/** A free TCP port on 127.0.0.1 (free when asked; redis-server binds it right after). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

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
 */
export async function startRedis({ bin = findRedisServer(), timeoutMs = 10_000, port: wanted = 0 } = {}) {
  if (!bin) throw new Error("Cannot start Redis: redis-server is not installed");
  const dir = mkdtempSync(join(tmpdir(), "emohaa-redis-"));
  for (let tries = 0;; tries++) {
    const port = wanted || (await freePort());
    const child = spawn(bin, [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
      "--protected-mode",
      "yes",
      "--loglevel",
      "warning",
    ], {
      stdio: ["ignore", "ignore", "pipe"],
      detached: false,
    });
    let stderr = "";
    child.stderr.on("data", (b) => (stderr += b));
    let exited = false;
    child.once("exit", () => (exited = true));
    const deadline = Date.now() + timeoutMs;
    while (!exited && Date.now() < deadline && !(await ping(port))) await new Promise((r) => setTimeout(r, 50));
    if (!exited && Date.now() < deadline) {
      child.unref();
      child.stderr.unref?.();
      const stop = () => stopPid(child, dir);
      return { url: `redis://127.0.0.1:${port}`, port, pid: child.pid, stop };
    }
    if (!exited) child.kill("SIGKILL");
    // Someone took the port between the check and the bind: try another one, a few times.
    if (tries >= 3 || wanted) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`Cannot start redis-server: ${stderr.trim().slice(-500) || "no PONG in time"}`);
    }
  }
}

/** Ends one redis-server by PID (SIGTERM, then SIGKILL after 3 s) and removes its directory. */
function stopPid(child, dir) {
  return new Promise((resolve) => {
    const removed = () => {
      rmSync(dir, { recursive: true, force: true });
      resolve();
    };
    if (child.exitCode !== null || child.signalCode !== null) return removed();
    const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
    child.once("exit", () => {
      clearTimeout(timer);
      removed();
    });
    child.kill("SIGTERM");
  });
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
