// Full-size chaos run (1000 requests at concurrency 50): `bun run scripts/chaos.ts [requests] [concurrency] [seed]`.
// Starts the simulator and the server (this runtime, or E2E_COMMAND), prints the report and exits non-zero on a failure.
import { CHAOS_ENV, rssMiB, runChaos } from "../tests/support/chaos.ts";
import { eventually, startSim } from "../tests/support/sim.ts";
import { startServer } from "../tests/support/server.ts";

const [requests = "1000", concurrency = "50", seedArg] = process.argv.slice(2);
const seed = Number(seedArg ?? Date.now() % 100_000);
const sim = await startSim();
const server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, ...CHAOS_ENV });
let failed = false;
try {
  await runChaos({ url: server.url, requests: 50, concurrency: 10, seed: 1, hangMs: 15_000 });
  await eventually(() => sim.sim.state().open === 0, 15_000, "warm-up deleted");
  const rssBefore = rssMiB(server.pid);
  const t0 = Date.now();
  const report = await runChaos({
    url: server.url,
    requests: Number(requests),
    concurrency: Number(concurrency),
    seed,
    hangMs: 15_000,
  });
  const seconds = (Date.now() - t0) / 1000;
  let leftOpen = -1;
  try {
    await eventually(() => sim.sim.state().open === 0 && sim.sim.state().openStreams === 0, 30_000, "deletions");
    leftOpen = 0;
  } catch {
    leftOpen = sim.sim.state().open;
  }
  const ping = await (await fetch(`${server.url}/ping`)).text();
  const rssAfter = rssMiB(server.pid);
  console.log(
    JSON.stringify(
      {
        seed,
        requests: Number(requests),
        concurrency: Number(concurrency),
        seconds,
        ...report,
        leftOpen,
        badDeletes: sim.sim.state().badDeletes,
        ping,
        rssBeforeMiB: rssBefore,
        rssAfterMiB: rssAfter,
      },
      null,
      2,
    ),
  );
  failed = report.silentTruncation > 0 || report.hanging > 0 || leftOpen !== 0 || ping !== "pong";
} finally {
  await server.kill();
  await sim.stop();
}
console.log(failed ? "chaos: FAILED" : "chaos: ok");
process.exit(failed ? 1 : 0);
