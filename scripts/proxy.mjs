// Throwaway reverse proxies (nginx, Caddy) for the reverse-proxy test: found (or installed with apt as root), started
// in the foreground on a free loopback port with a configuration written to a temporary directory, stopped by PID.
// Like redis.mjs; the finding, installing, starting and stopping are services.mjs.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { ensureExecutable, findExecutable, startService } from "./services.mjs";

/** The nginx executable, or undefined. */
export const findNginx = () => findExecutable("nginx");
/** The caddy executable, or undefined. */
export const findCaddy = () => findExecutable("caddy");
/** Finds nginx, installing Debian's package as root when missing; undefined (reason logged) when it cannot. */
export const ensureNginx = (log = console.log) => ensureExecutable("nginx", "nginx", "its proxy test skips", log);
/** Finds caddy, installing Debian's package as root when missing; undefined (reason logged) when it cannot. */
export const ensureCaddy = (log = console.log) => ensureExecutable("caddy", "caddy", "its proxy test skips", log);

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

/** Starts a proxy made by `launch(dir, port)` and waits until the port accepts; retries a taken port. */
async function start(name, timeoutMs, launch) {
  const r = await startService(name, { launch, ready: accepts, timeoutMs });
  return { url: `http://127.0.0.1:${r.port}`, port: r.port, pid: r.pid, output: r.output, stop: r.stop };
}
