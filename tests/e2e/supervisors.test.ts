// End to end: every documented way of running stops with its clean shutdown when a supervisor signals its top process
// only (systemd with KillMode=process, Docker's PID 1, PM2, a script's `kill $pid`): no process of the tree is left,
// the port is free, and the conversation kept between turns is deleted. From source: `npm start`, `deno task start`
// (with deno on the PATH, and through npm's deno shim), `deno task serve` and the plain server command; in the
// deployment runs, the entry under test (the binary, `node dist/index.js`, `deno serve deploy.ts`).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../scripts/services.mjs";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { assertPrivate, processTree, serverCommand, signalsApply, startServer } from "../support/server.ts";

const root = new URL("../../", import.meta.url).pathname;
const deno = join(root, "node_modules", "deno", "deno");

let sim: RunningSim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim?.stop();
});

/** A process's start time from /proc, or undefined once it is gone (a zombie counts as gone). */
function started(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[0] === "Z" ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

/** Resolves true when nothing accepts a connection on the port any more. */
const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(false)));
    s.once("error", () => resolve(true));
  });

interface Way {
  name: string;
  command: string[];
  env?: Record<string, string>;
}

const fromSource = !process.env.E2E_COMMAND;
const ways: Way[] = fromSource
  ? [
    { name: "the server command", command: serverCommand() },
    { name: "npm start", command: ["npm", "start"] },
    { name: "deno task start", command: [deno, "task", "start"] },
    // npm's deno shim is a node process running the deno package's bin.cjs, which forwards no signal.
    {
      name: "deno task start through npm's deno shim",
      command: [join(root, "node_modules", ".bin", "deno"), "task", "start"],
    },
    {
      name: "deno task serve",
      command: [deno, "task", "serve"],
      // deno serve's address comes from the command line or DENO_SERVE_ADDRESS; deploy.ts would share its state in
      // Deno's default KV database.
      env: { DENO_SERVE_ADDRESS: "tcp:127.0.0.1:0", STATE: "memory" },
    },
    {
      // An idle keep-alive connection upstream must not keep `deno serve` running after the shutdown.
      name: "deno task serve with UPSTREAM_CLIENT=http1",
      command: [deno, "task", "serve"],
      env: { DENO_SERVE_ADDRESS: "tcp:127.0.0.1:0", STATE: "memory", UPSTREAM_CLIENT: "http1" },
    },
  ]
  : [{ name: "the server command", command: serverCommand() }];

describe("stopped by a supervisor's signal to the top process", {
  skip: !signalsApply && "no process signals where this runs",
}, () => {
  for (const way of ways) {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      it(`${way.name}, ${signal}: no process left, the port free, the kept conversation deleted`, async () => {
        const open = sim.sim.state().open;
        const server = await startServer(
          { EMOHAA_BASE_URL: sim.baseUrl, CONTINUE_CONVERSATIONS: "true", LOG_LEVEL: "info", ...way.env },
          way.command,
        );
        const tree = processTree(server.pid).map((pid) => ({ pid, start: started(pid) }));
        try {
          const res = await fetch(`${server.url}/v1/chat/completions`, {
            method: "POST",
            headers: { authorization: "Bearer live-supervised", "content-type": "application/json" },
            body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
          });
          assert.equal(res.status, 200);
          assert.equal(res.headers.get("x-emohaa-continuation"), "new");
          await res.json();
          await eventually(() => sim.sim.state().open === open + 1, 5000, "the conversation kept");
          assert.ok(tree.length >= 1);

          server.signal(signal); // the top process only, as the supervisor does
          await eventually(
            () => tree.every((p) => started(p.pid) !== p.start),
            15_000,
            `every process of ${tree.map((p) => p.pid).join(", ")} gone`,
          );
          assert.ok(await portFree(Number(new URL(server.url).port)), "the port is free");
          assert.equal(sim.sim.state().open, open, "the kept conversation deleted");
          server.assertPrivate();
        } finally {
          for (const p of tree) {
            if (started(p.pid) === p.start) {
              try {
                process.kill(p.pid, "SIGKILL");
              } catch { /* gone */ }
            }
          }
        }
      });
    }
  }
});

// PM2, the original's way of running, with its defaults: SIGINT first, SIGKILL after 1.6 s (kill_timeout). It runs the
// built entries, so the deployment runs of the binary and of the Node bundle take this part.
const entry = process.env.E2E_COMMAND?.split(" ");
const pm2Script = !entry
  ? undefined
  : entry.length === 1
  ? entry[0]
  : /\bnode\b/.test(entry[0]!)
  ? entry.at(-1)
  : undefined;

describe("under PM2", { skip: !pm2Script && "PM2 runs the built entries: the binary and the Node bundle" }, () => {
  const pm2 = join(root, "node_modules", ".bin", "pm2");
  let home: string;
  const run = (args: string[], env: Record<string, string> = {}) =>
    new Promise<string>((resolve, reject) => {
      execFile(pm2, args, { cwd: root, env: { ...process.env, PM2_HOME: home, ...env } }, (err, stdout, stderr) =>
        err ? reject(new Error(`pm2 ${args.join(" ")}: ${err.message}\n${stdout}${stderr}`)) : resolve(stdout));
    });
  before(() => {
    home = mkdtempSync(join(tmpdir(), "emohaa-pm2-"));
  });
  after(async () => {
    // The daemon this test started, and only it: `pm2 kill` on its own PM2_HOME, then its PID if it is still there.
    await run(["kill"]).catch(() => {});
    try {
      process.kill(Number(readFileSync(join(home, "pm2.pid"), "utf8")), "SIGKILL");
    } catch { /* gone */ }
    rmSync(home, { recursive: true, force: true });
  });

  it("pm2 start serves; reload and stop each leave 0 conversations, and the process is gone after stop", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const open = sim.sim.state().open;
    await run(["start", pm2Script!, "--name", "emohaa"], {
      EMOHAA_BASE_URL: sim.baseUrl,
      HOST: "127.0.0.1",
      PORT: String(port),
      CONTINUE_CONVERSATIONS: "true",
      XDG_STATE_HOME: home,
    });
    const chats = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const res = await fetch(`${url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer live-pm2-${i}`, "content-type": "application/json" },
          body: JSON.stringify({ messages: [{ role: "user", content: `hi ${i}` }] }),
        });
        assert.equal(res.status, 200);
        await res.json();
      }
      await eventually(() => sim.sim.state().open === open + n, 5000, `${n} conversations kept`);
    };
    const serving = () =>
      eventually(async () => (await fetch(`${url}/ping`).catch(() => null))?.status === 200, 15_000, "serving");
    await serving();
    await chats(3);
    const pidBefore = Number((await run(["pid", "emohaa"])).trim());
    await run(["reload", "emohaa"]);
    await serving();
    assert.notEqual(Number((await run(["pid", "emohaa"])).trim()), pidBefore, "a new process after the reload");
    assert.equal(sim.sim.state().open, open, "the reload's shutdown deleted the kept conversations");
    await chats(2);
    const pid = Number((await run(["pid", "emohaa"])).trim());
    await run(["stop", "emohaa"]);
    assert.equal(sim.sim.state().open, open, "the stop's shutdown deleted the kept conversations");
    assert.ok(await portFree(port), "the port is free");
    assert.equal(started(pid), undefined, "the process is gone");
    const out = readFileSync(join(home, "logs", "emohaa-out.log"), "utf8") +
      readFileSync(join(home, "logs", "emohaa-error.log"), "utf8");
    assert.match(out, /SIGINT: no new connections/);
    assertPrivate(out);
  });
});
