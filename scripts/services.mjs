// Throwaway servers for the tests (redis-server, nginx, Caddy): an executable found, or installed from Debian's
// package as root, started in the foreground on a free loopback port in a fresh temporary directory, stopped by its
// PID. redis.mjs and proxy.mjs say how each one is configured.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

/** An executable on PATH (or in the system directories), or undefined. */
export function findExecutable(name) {
  const dirs = [
    ...(process.env.PATH ?? "").split(delimiter),
    "/usr/sbin",
    "/usr/bin",
    "/usr/local/sbin",
    "/usr/local/bin",
  ];
  return dirs.filter(Boolean).map((d) => join(d, name)).find((p) => existsSync(p));
}

/**
 * Finds `name`, installing Debian's package `pkg` when it is missing and this is root with apt-get (a Debian image's
 * policy-rc.d keeps its service from starting). Returns the path, or undefined with the reason printed, ending with
 * `missing` (what then does not run).
 */
export function ensureExecutable(name, pkg, missing, log = console.log) {
  const found = findExecutable(name);
  if (found) return found;
  const root = process.getuid?.() === 0;
  const apt = spawnSync("sh", ["-c", "command -v apt-get"], { encoding: "utf8" }).status === 0;
  if (!root || !apt) {
    log(`${name} is not installed and cannot be installed here (${root ? "no apt-get" : "not root"}): ${missing}`);
    return undefined;
  }
  log(`${name} is missing: installing Debian's ${pkg} package`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [["update", "-qq"], ["install", "-y", "-qq", "--no-install-recommends", pkg]]) {
    const r = spawnSync("apt-get", args, { env, encoding: "utf8" });
    if (r.status !== 0) {
      log(`apt-get ${args.join(" ")} failed: ${(r.stderr || r.stdout).trim().slice(-500)}`);
      return undefined;
    }
  }
  return findExecutable(name);
}

/** A free TCP port on 127.0.0.1 (free when asked; the server binds it right after). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts the server `launch(dir, port)` spawns (stderr piped) in a fresh directory and waits until `ready(port)`.
 * Another process may take the free port between the check and the bind: then another port, a few times (never with
 * a `port` asked for). Resolves { port, pid, output, stop }; `stop()` ends that PID only and removes the directory.
 */
export async function startService(name, { launch, ready, timeoutMs = 10_000, port: wanted = 0 }) {
  const dir = mkdtempSync(join(tmpdir(), `emohaa-${name}-`));
  for (let tries = 0;; tries++) {
    const port = wanted || (await freePort());
    const child = launch(dir, port);
    let stderr = "";
    child.stderr.on("data", (b) => (stderr += b));
    let exited = false;
    child.once("exit", () => (exited = true));
    const deadline = Date.now() + timeoutMs;
    while (!exited && Date.now() < deadline && !(await ready(port))) await new Promise((r) => setTimeout(r, 50));
    if (!exited && Date.now() < deadline) {
      child.unref();
      child.stderr.unref?.();
      return { port, pid: child.pid, output: () => stderr, stop: () => stopChild(child, dir) };
    }
    if (!exited) child.kill("SIGKILL");
    if (tries >= 3 || wanted) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`Cannot start ${name}: ${stderr.trim().slice(-800) || "it was not ready in time"}`);
    }
  }
}

/** Ends one child by PID (SIGTERM, then SIGKILL after 3 s) and removes its directory. */
function stopChild(child, dir) {
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
