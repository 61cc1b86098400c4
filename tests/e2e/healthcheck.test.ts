// End to end: the server entry's --healthcheck (the Docker image's HEALTHCHECK), run like the server itself: `bun run
// server.ts`, `deno run ... server.ts`, the binary or the Node bundle (E2E_COMMAND), against a running server and
// against nothing.
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type RunningSim, startSim } from "../support/sim.ts";
import { ownServer, serverCommand, startServer } from "../support/server.ts";

const root = new URL("../../", import.meta.url).pathname;
// `deno serve deploy.ts` takes no arguments of its own: the platform runs it, and checks it with its own probe.
const platformServes = !ownServer && "deno serve runs deploy.ts, which has no --healthcheck";

let sim: RunningSim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim?.stop();
});

/** Runs the server command with --healthcheck, configured for `port` on 127.0.0.1; resolves to its exit code. */
function healthcheck(port: string): Promise<number | null> {
  const [cmd, ...args] = [...serverCommand(), "--healthcheck"];
  const child = spawn(cmd!, args, {
    cwd: process.env.E2E_CWD || root,
    env: { ...process.env, PORT: port, HOST: "127.0.0.1", EMOHAA_BASE_URL: sim.baseUrl },
    stdio: "ignore",
  });
  return new Promise((resolve) => child.on("close", (code) => resolve(code)));
}

describe("the server's --healthcheck", () => {
  it("exits 0 while the server answers /ping and 1 once nothing listens", { skip: platformServes }, async () => {
    const server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl });
    const port = new URL(server.url).port;
    try {
      assert.equal(await healthcheck(port), 0);
    } finally {
      await server.kill();
    }
    assert.equal(await healthcheck(port), 1);
  });
});
