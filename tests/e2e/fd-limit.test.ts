// End to end: the real server process at its descriptor limit (prlimit) under a flood of hostile connections from
// another process. It measures time under load, so scripts/test.mjs runs it alone (test-plan.mjs, ALONE).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { type RunningSim, startSim } from "../support/sim.ts";
import { ownServer, serverCommand, startServer } from "../support/server.ts";
import { runtimeName } from "../../runtime/serve.ts";

let sim: RunningSim;
before(async () => {
  sim = await startSim();
});
after(async () => {
  await sim?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const platformServes = !ownServer && "the platform's HTTP server serves here, not lib/http/server.ts";

describe(
  "at the descriptor limit",
  { skip: platformServes || (!existsSync("/usr/bin/prlimit") && "no prlimit here") },
  () => {
    it("90 attacker connections held and reopened under nofile=96 leave /ping answering within a second", async () => {
      const command = serverCommand();
      const limited = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, LOG_LEVEL: "error" }, [
        "/usr/bin/prlimit",
        "--nofile=96:96",
        ...command,
      ]);
      const p = Number(new URL(limited.url).port);
      const script = new URL("../support/attacker.ts", import.meta.url).pathname;
      const args = runtimeName() === "deno" ? ["run", "--allow-net", script] : ["run", script];
      const attacker = spawn(process.execPath, [...args, String(p), "90"], { stdio: ["ignore", "pipe", "inherit"] });
      try {
        await new Promise((r) => attacker.stdout!.once("data", r));
        await sleep(500);
        const answered: number[] = [];
        let resets = 0;
        for (const end = Date.now() + 8000; Date.now() < end;) {
          const t0 = Date.now();
          // Within the second, the client may retry once on a reset, as HTTP clients do for a GET: a new connection
          // evicted before the server read its request (a busy event loop under the flood) is reset, not answered.
          const ping = () =>
            fetch(`${limited.url}/ping`, {
              signal: AbortSignal.timeout(1000 - (Date.now() - t0)),
              headers: { connection: "close" },
            });
          const res = await ping()
            .catch((
              err,
            ) => (Date.now() - t0 < 900 && !(err instanceof DOMException) ? (resets++, ping()) : Promise.reject(err)))
            .catch((err) => {
              throw new Error(
                `/ping ${answered.length + 1} failed after ${Date.now() - t0} ms (earlier: ${answered.join(", ")} ms)`,
                { cause: err },
              );
            });
          assert.equal(await res.text(), "pong");
          answered.push(Date.now() - t0);
          await sleep(100);
        }
        assert.ok(answered.length >= 20, `only ${answered.length} pings`);
        assert.ok(answered.every((ms) => ms < 1000), `a ping took ${Math.max(...answered)} ms`);
        // Resets are the exception, never the rule.
        assert.ok(resets <= answered.length / 5, `${resets} of ${answered.length} pings were reset first`);
        // Still alive after the attack: it answers, and never exited.
        attacker.kill("SIGKILL");
        await sleep(300);
        assert.equal(await (await fetch(`${limited.url}/ping`)).text(), "pong");
      } finally {
        attacker.kill("SIGKILL");
        await limited.kill("SIGKILL");
      }
    });
  },
);
