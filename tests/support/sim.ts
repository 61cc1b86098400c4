// Test support: the simulator on a real loopback port, and a fetch that calls it in-process.
import { createSimulator, type Simulator } from "../../sim/simulator.ts";
import { serveNative as serve } from "../../runtime/serve.ts";

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
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    const res = await sim.fetch(req);
    if (!res.body || !init?.signal) return res;
    // Like a real fetch: aborting the request errors the body being read.
    const signal = init.signal;
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        signal.addEventListener("abort", () => {
          try {
            c.error(new DOMException("The operation was aborted", "AbortError"));
          } catch { /* closed */ }
          reader.cancel().catch(() => {});
        }, { once: true });
      },
      async pull(c) {
        try {
          const r = await reader.read();
          if (r.done) c.close();
          else c.enqueue(r.value);
        } catch (err) {
          try {
            c.error(err);
          } catch { /* closed */ }
        }
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, { status: res.status, headers: res.headers });
  }) as typeof fetch;
}

/** Polls every `everyMs` until `check` passes or `ms` elapse. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms = 3000,
  what = "condition",
  everyMs = 20,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
}
