// Test support: the simulator on a real loopback port, and a fetch that calls it in-process.
import { createSimulator, type Simulator } from "../../lib/sim.ts";
import { serve } from "../../runtime/serve.ts";

export interface RunningSim {
  sim: Simulator;
  /** The base URL to give the gateway (`EMOHAA_BASE_URL`). */
  baseUrl: string;
  stop(): Promise<void>;
}

/** Starts the simulator on 127.0.0.1 with a free port. */
export async function startSim(options?: Parameters<typeof createSimulator>[0]): Promise<RunningSim> {
  const sim = createSimulator(options);
  const served = await serve(sim.fetch, { port: 0, hostname: "127.0.0.1" });
  return { sim, baseUrl: `http://127.0.0.1:${served.port}/echo-prod`, stop: () => served.stop(true) };
}

/** A `fetch` that hands requests straight to the simulator (no sockets): for unit tests. */
export function simFetch(sim: Simulator): typeof fetch {
  return ((input: RequestInfo | URL, init?: RequestInit) => sim.fetch(new Request(input, init))) as typeof fetch;
}

/** Polls until `check` passes or `ms` elapse. */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 3000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
}
