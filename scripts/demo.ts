// Demo: the upstream simulator and the gateway wired to it, so anyone can try the API with no Emohaa account.
import { start } from "../lib/start.ts";
import { consoleWriter, runtimeParts } from "../runtime/parts.ts";
import { readEnv, serve, serveNative } from "../runtime/serve.ts";
import { createSimulator } from "../sim/simulator.ts";

const env = readEnv();
const sim = createSimulator();
const upstream = await serveNative(sim.fetch, { port: 0, hostname: "127.0.0.1" });
// No crash journal: the simulator's conversations end with this process.
const gatewayEnv = { ...env, EMOHAA_BASE_URL: `http://127.0.0.1:${upstream.port}/echo-prod`, JOURNAL: "off" };
const { app, config } = await start(gatewayEnv, { ...runtimeParts(), writeLog: consoleWriter });
const served = await serve(app.fetch, { port: config.port, hostname: config.host, limits: config.http });
const url = `http://localhost:${served.port}`;
console.log(`
  emohaa-free-api DEMO: answers come from a local SIMULATOR of Emohaa, not the real service.

  Gateway listening on ${url}   (playground at /, API docs at /docs)
  Demo token:  live-demo        (any token starting with "live" works; "expired..." shows a rejected token)

  Try:
    curl ${url}/v1/chat/completions -H 'Authorization: Bearer live-demo' \\
      -H 'Content-Type: application/json' -d '{"model":"emohaa","stream":true,"messages":[{"role":"user","content":"你好"}]}'
`);
