// The deployment runs of `npm test` (scripts/test.mjs runs them): the ways of deploying the end-to-end files run
// against (the binary, `node dist/index.js`, `deno serve deploy.ts` in a fresh copy), and the fresh copy itself.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const root = new URL("../", import.meta.url).pathname;

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

/**
 * The ways of deploying, as [name, the build job it needs, its environment]: `deno` is the deno executable, `fresh`
 * the fresh copy (its `dir` is set once that build has run).
 */
export function deployments(deno, fresh) {
  return [
    ["binary", "build compile", () => ({ E2E_COMMAND: join(root, "dist", "emohaa-free-api") })],
    ["node bundle", "build bundle", () => ({ E2E_COMMAND: `${process.execPath} dist/index.js` })],
    ["deno serve", "build fresh copy", () => ({
      E2E_COMMAND: `${deno} serve --allow-net --allow-env --allow-read --allow-sys --port 0 --host 127.0.0.1 deploy.ts`,
      E2E_CWD: fresh.dir,
      // Deno Deploy sends no SIGHUP or SIGTERM to an isolate: the tests of signal handling do not apply.
      E2E_NO_SIGNALS: "1",
      // The platform's server owns the connections there (Deno Deploy): the tests of this project's server do not
      // apply.
      E2E_PLATFORM_SERVES: "1",
      // deploy.ts would share its state in Deno's default KV database: every server of the suite, and of every run
      // since, would share one pool and one journal. Each server gets its own memory; the tests of shared state name
      // their store (STATE=kv:/a/file.sqlite3).
      STATE: "memory",
    })],
  ];
}
