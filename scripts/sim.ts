// Runs the upstream simulator on its own: `bun run scripts/sim.ts` (SIM_PORT, default 8001).
import { createSimulator } from "../sim/simulator.ts";
import { readEnv, serveNative as serve } from "../runtime/serve.ts";

const env = readEnv();
const sim = createSimulator();
const served = await serve(sim.fetch, { port: Number(env.SIM_PORT ?? 8001), hostname: env.SIM_HOST ?? "127.0.0.1" });
console.log(`Emohaa simulator (not the real Emohaa) listening on http://${served.hostname}:${served.port}/echo-prod`);
