// The deployment runs of `npm test`: build the binary and the Node bundle, then run the end-to-end suite against each
// way of deploying (binary, `node dist/index.js`, `deno serve deploy.ts` in a fresh copy) and check the artifacts.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const root = new URL("../", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);

/**
 * Copies what a `git clone` of the working tree would hold (tracked files plus new, not ignored ones) to a temp
 * directory: no node_modules, no dist. Outside a git checkout it copies everything but those.
 */
export function freshCopy() {
  const dir = mkdtempSync(join(tmpdir(), "emohaa-fresh-"));
  const git = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
    cwd: root,
    encoding: "utf8",
  });
  if (git.status === 0) {
    for (const file of git.stdout.split("\0").filter(Boolean)) {
      if (!existsSync(join(root, file))) continue; // deleted in the working tree
      // A node_modules that is a link (a git worktree sharing another checkout's) is not ignored by "node_modules/":
      // copied, it would be that checkout's own, and `deno install` in the copy would rewrite it.
      if (/^(node_modules|dist)(\/|$)/.test(file)) continue;
      mkdirSync(dirname(join(dir, file)), { recursive: true });
      cpSync(join(root, file), join(dir, file));
    }
  } else {
    const skip = new Set(["node_modules", "dist", ".git"]);
    cpSync(root, dir, { recursive: true, filter: (src) => !skip.has(src.slice(root.length).split("/")[0]) });
  }
  return dir;
}

function step(label, cmd, args, cwd = root) {
  console.log(`--- ${label}: ${[cmd, ...args].join(" ")}`);
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) {
    throw new Error(
      `${label} failed (exit ${r.status ?? r.signal}):\n${r.stdout ?? ""}${r.stderr ?? ""}${r.error ?? ""}`,
    );
  }
}

/**
 * Builds everything the deployment runs need: `npm run compile` and `npm run build` (the scripts the Dockerfile,
 * Render and the release workflow use), and a fresh copy with `deno install` done (Deno Deploy's install step).
 * Returns the environment the runs share.
 */
export function prepareDeploy() {
  step("compile", "npm", ["run", "compile"]);
  step("build", "npm", ["run", "build"]);
  const fresh = freshCopy();
  process.on("exit", () => rmSync(fresh, { recursive: true, force: true }));
  // The deno executable itself, not node_modules/.bin/deno (the package's JavaScript launcher, see
  // scripts/postinstall.mjs): a launcher between the tests and `deno serve` would outlive a killed server.
  const native = join(root, "node_modules", "deno", "deno");
  const deno = existsSync(native) ? native : realpathSync(bin("deno"));
  step("deno install (fresh copy)", deno, ["install"], fresh);
  return { fresh, deno };
}

/** The runs, in the shape scripts/test.mjs uses; `env(prepared)` gives each run's extra environment. */
/**
 * The end-to-end files a deployment run takes: all of tests/e2e but those whose subject is the same code under every
 * entry and that the Bun and Deno runs already cover (the sweep of kept conversations and response chains are state
 * store logic, a minute per run). What an entry changes (start-up, signals, shutdown, the server, the journal, kept
 * conversations at shutdown) stays in every run.
 */
const SAME_UNDER_EVERY_ENTRY = ["sweep.test.ts", "previous-response.test.ts"];
const e2eFiles = () =>
  readdirSync(join(root, "tests", "e2e"))
    .filter((f) => f.endsWith(".test.ts") && !SAME_UNDER_EVERY_ENTRY.includes(f))
    .sort()
    .map((f) => `./tests/e2e/${f}`);

export function deployRuns() {
  const bunTest = (label, args, env) => ({
    name: `deploy: ${label}`,
    parser: "bun",
    cmd: bin("bun"),
    args: ["test", "--timeout=60000", ...args],
    env,
    deploy: true,
  });
  return [
    bunTest("binary", e2eFiles(), () => ({ E2E_COMMAND: join(root, "dist", "emohaa-free-api") })),
    bunTest("node bundle", e2eFiles(), () => ({ E2E_COMMAND: `${process.execPath} dist/index.js` })),
    bunTest("deno serve deploy.ts (fresh copy)", e2eFiles(), (p) => ({
      E2E_COMMAND:
        `${p.deno} serve --allow-net --allow-env --allow-read --allow-sys --port 0 --host 127.0.0.1 deploy.ts`,
      E2E_CWD: p.fresh,
      // Deno Deploy sends no SIGHUP or SIGTERM to an isolate: the tests of signal handling do not apply.
      E2E_NO_SIGNALS: "1",
      // The platform's server owns the connections there (Deno Deploy): the tests of this project's server do not apply.
      E2E_PLATFORM_SERVES: "1",
      // deploy.ts would share its state in Deno's default KV database: every server of the suite, and of every run
      // since, would share one pool and one journal. Each server gets its own memory; the tests of shared state
      // name their store (STATE=kv:/a/file.sqlite3).
      STATE: "memory",
    })),
    // A generous per-test timeout: qemu and a first `deno install` are slow on a busy 2-core CI machine.
    bunTest("artifacts", ["--timeout=120000", "./tests/deploy/artifacts.check.ts"], (p) => ({ DEPLOY_DENO: p.deno })),
  ];
}
