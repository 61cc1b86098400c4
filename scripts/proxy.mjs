// Throwaway reverse proxies (nginx, Caddy) for the reverse-proxy test: found (or installed with apt as root), started
// in the foreground on a free loopback port with a configuration written to a temporary directory, stopped by PID.
// Like redis.mjs.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

/** An executable on PATH (or in the system directories), or undefined. */
function find(name) {
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
 * Finds `name`, installing Debian's package of that name when it is missing and this is root with apt-get (a Debian
 * image's policy-rc.d keeps its service from starting). Returns the path, or undefined with the reason printed.
 */
function ensure(name, log) {
  const found = find(name);
  if (found) return found;
  const root = process.getuid?.() === 0;
  const apt = spawnSync("sh", ["-c", "command -v apt-get"], { encoding: "utf8" }).status === 0;
  if (!root || !apt) {
    log(
      `${name} is not installed and cannot be installed here (${
        root ? "no apt-get" : "not root"
      }): its proxy test skips`,
    );
    return undefined;
  }
  log(`${name} is missing: installing Debian's ${name} package`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [["update", "-qq"], ["install", "-y", "-qq", "--no-install-recommends", name]]) {
    const r = spawnSync("apt-get", args, { env, encoding: "utf8" });
    if (r.status !== 0) {
      log(`apt-get ${args.join(" ")} failed: ${(r.stderr || r.stdout).trim().slice(-500)}`);
      return undefined;
    }
  }
  return find(name);
}

/** The nginx executable, or undefined. */
export const findNginx = () => find("nginx");
/** The caddy executable, or undefined. */
export const findCaddy = () => find("caddy");
/** Finds nginx, installing Debian's package as root when missing; undefined (reason logged) when it cannot. */
export const ensureNginx = (log = console.log) => ensure("nginx", log);
/** Finds caddy, installing Debian's package as root when missing; undefined (reason logged) when it cannot. */
export const ensureCaddy = (log = console.log) => ensure("caddy", log);

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

function accepts(port) {
  return new Promise((resolve) => {
    const c = createConnection({ host: "127.0.0.1", port });
    c.once("connect", () => (c.destroy(), resolve(true)));
    c.once("error", () => resolve(false));
  });
}

/**
 * Starts nginx in the foreground with `http` (the body of an `http { }` block; `{{port}}` is replaced by a free
 * loopback port) in a fresh directory that also holds its pid file, logs and temporary files. Resolves
 * { url, port, pid, output, stop } once the port accepts; `stop()` ends that PID only and removes the directory.
 */
export function startNginx(http, { bin = findNginx(), timeoutMs = 10_000 } = {}) {
  if (!bin) throw new Error("Cannot start nginx: it is not installed");
  return start("nginx", timeoutMs, (dir, port) => {
    // One process (no master and workers: one PID to stop); everything it would write under /var goes to `dir`.
    // As root it would otherwise look for its compiled-in user; as anyone else the directive is not wanted.
    const conf = `${process.getuid?.() === 0 ? "user root;" : ""}
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${dir}/body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
${http.replaceAll("{{port}}", String(port))}
}
`;
    writeFileSync(join(dir, "nginx.conf"), conf);
    return spawn(bin, ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", "stderr", "-g", "daemon off;"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
  });
}

/**
 * Starts Caddy in the foreground with `caddyfile` (site blocks; `{{port}}` is replaced by a free loopback port),
 * with no admin endpoint and its data and config directories in a fresh temporary one. Same result as startNginx.
 */
export function startCaddy(caddyfile, { bin = findCaddy(), timeoutMs = 10_000 } = {}) {
  if (!bin) throw new Error("Cannot start caddy: it is not installed");
  return start("caddy", timeoutMs, (dir, port) => {
    const file = join(dir, "Caddyfile");
    writeFileSync(file, `{\n\tadmin off\n}\n\n${caddyfile.replaceAll("{{port}}", String(port))}`);
    return spawn(bin, ["run", "--config", file, "--adapter", "caddyfile"], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, HOME: dir, XDG_DATA_HOME: join(dir, "data"), XDG_CONFIG_HOME: join(dir, "config") },
    });
  });
}

/** Starts a server made by `launch(dir, port)` and waits until the port accepts; retries a taken port. */
async function start(name, timeoutMs, launch) {
  const dir = mkdtempSync(join(tmpdir(), `emohaa-${name}-`));
  for (let tries = 0;; tries++) {
    const port = await freePort();
    const child = launch(dir, port);
    let stderr = "";
    child.stderr.on("data", (b) => (stderr += b));
    let exited = false;
    child.once("exit", () => (exited = true));
    const deadline = Date.now() + timeoutMs;
    while (!exited && Date.now() < deadline && !(await accepts(port))) await new Promise((r) => setTimeout(r, 50));
    if (!exited && Date.now() < deadline) {
      const stop = () => stopPid(child, dir);
      return { url: `http://127.0.0.1:${port}`, port, pid: child.pid, output: () => stderr, stop };
    }
    if (!exited) child.kill("SIGKILL");
    if (tries >= 3 || !/address already in use/i.test(stderr)) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`Cannot start ${name}: ${stderr.trim().slice(-800) || "the port did not accept in time"}`);
    }
  }
}

/** Ends the server by PID (SIGTERM, a fast stop; SIGKILL after 3 s) and removes its directory. */
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
