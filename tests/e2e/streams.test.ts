// End to end: more than 256 concurrent streams through the real server process with its default settings (no
// BUN_CONFIG_MAX_HTTP_REQUESTS), each reaching the upstream at once, and the server holding 1,000 connections.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, startServer } from "../support/server.ts";

const STREAMS = 300;
let sim: RunningSim;
let server: RunningServer;

/**
 * One streamed chat over a raw connection (the test's own client: Bun's fetch would cap it at 256 at once).
 * Resolves with the whole answer; `first` is called when the first piece of content arrives.
 */
function streamChat(port: number, token: string, first: () => void): Promise<string> {
  // Each stream lasts about 12 s upstream: opening all of them must fit in that, on a machine busy with other suites.
  const body = JSON.stringify({ stream: true, messages: [{ role: "user", content: "[[pieces:3]] [[delay:4000]]" }] });
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let got = "";
    let seen = false;
    s.on("data", (b) => {
      got += b.toString();
      if (!seen && /"content":"[^"]/.test(got)) {
        seen = true;
        first();
      }
    });
    s.on("error", reject);
    s.on("close", () => resolve(got));
    s.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n` +
        `Authorization: Bearer ${token}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  });
}

before(async () => {
  sim = await startSim();
  // The server's own defaults, as README's commands start it: no variable raises a limit, none picks the client.
  for (
    const v of [
      "BUN_CONFIG_MAX_HTTP_REQUESTS",
      "UPSTREAM_CLIENT",
      "HTTPS_PROXY",
      "https_proxy",
      "HTTP_PROXY",
      "http_proxy",
      "ALL_PROXY",
      "all_proxy",
    ]
  ) {
    delete process.env[v];
  }
  server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, LOG_LEVEL: "error" });
});
after(async () => {
  await server?.kill();
  await sim?.stop();
});

describe("many streams", () => {
  it(`${STREAMS} concurrent streams are all open upstream at once and all get their first piece`, async () => {
    const port = Number(new URL(server.url).port);
    let firsts = 0;
    const streams = Array.from({ length: STREAMS }, (_, i) => streamChat(port, `live-many${i}`, () => firsts++));
    // Served concurrently: every stream's chat is open upstream at the same time.
    await eventually(
      () => sim.sim.state().maxOpenStreams >= STREAMS,
      30_000,
      `${STREAMS} upstream streams open at once`,
    );
    for (const text of await Promise.all(streams)) {
      assert.match(text, /^HTTP\/1\.1 200 [\s\S]*data: \[DONE\]\n\n\r\n0\r\n\r\n$/);
    }
    assert.equal(firsts, STREAMS);
  });

  it("holds 1,000 open client connections with the default settings", async () => {
    const port = Number(new URL(server.url).port);
    const sockets = await Promise.all(
      Array.from({ length: 1000 }, () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, "127.0.0.1", () => resolve(s));
          s.on("error", reject);
        })),
    );
    try {
      // Every one of them still gets its answer: none was evicted or refused.
      let answered = 0;
      await Promise.all(sockets.map((s) =>
        new Promise<void>((resolve) => {
          let got = "";
          s.on("data", (b) => {
            got += b;
            if (got.endsWith("pong")) {
              answered++;
              resolve();
            }
          });
          s.on("close", () => resolve());
          s.write("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
        })
      ));
      assert.equal(answered, 1000);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });
});
