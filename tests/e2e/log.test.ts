// End to end: the server's real output. A stalled reader of stdout must not stop the server; a client cannot add or
// colour log lines; the start-up line shows no credentials of EMOHAA_BASE_URL.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { eventually } from "../support/sim.ts";
import { startServer } from "../support/server.ts";

// Nothing here reaches the upstream: /ping, /metrics and unmatched paths are answered by the gateway itself.
const UPSTREAM = "http://127.0.0.1:9/echo-prod";

/** Sends raw bytes as one HTTP/1.1 request and returns the raw answer (the server closes after it). */
function rawRequest(url: string, head: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(head));
    let answer = "";
    socket.on("data", (d) => (answer += d.toString("latin1")));
    socket.on("end", () => resolve(answer));
    socket.on("close", () => resolve(answer));
    socket.on("error", reject);
    socket.setTimeout(5000, () => socket.destroy(new Error("no answer in 5 s")));
  });
}

const metric = async (url: string, name: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  assert.ok(m, `${name} in /metrics`);
  return Number(m[1]);
};

describe("log output", () => {
  it(
    "a stdout nobody reads: /ping keeps answering through 2,000 requests, lines beyond the buffer are dropped and counted, and reported once reading resumes",
    // `deno serve deploy.ts` logs with console.log: on Deno Deploy the platform reads it, not a pipe we can stall.
    { skip: process.env.E2E_NO_SIGNALS === "1" && "the platform collects the logs where this runs" },
    async () => {
      const server = await startServer({ EMOHAA_BASE_URL: UPSTREAM, LOG_LEVEL: "info" });
      try {
        server.pauseOutput();
        // Long unmatched paths: each logs a ~4 KB line, so 2,000 of them are far more than any pipe and the buffer hold.
        const long = "x".repeat(4000);
        let next = 0;
        const worker = async () => {
          while (next < 2000) {
            const i = next++;
            const res = await fetch(`${server.url}/stall-${i}-${long}`, { signal: AbortSignal.timeout(10_000) });
            assert.equal(res.status, 404);
            await res.arrayBuffer();
            if (i % 200 === 0) {
              const ping = await fetch(`${server.url}/ping`, { signal: AbortSignal.timeout(1000) });
              assert.equal(await ping.text(), "pong");
            }
          }
        };
        await Promise.all(Array.from({ length: 8 }, worker));
        const ping = await fetch(`${server.url}/ping`, { signal: AbortSignal.timeout(1000) });
        assert.equal(await ping.text(), "pong");
        const dropped = await metric(server.url, "emohaa_log_lines_dropped_total");
        assert.ok(dropped > 0, `dropped ${dropped}`);

        server.resumeOutput();
        await eventually(() => /\d+ log lines dropped/.test(server.output()), 15_000, "the dropped-lines report");
        const reported = Number(/(\d+) log lines dropped/.exec(server.output())![1]);
        assert.ok(reported > 0 && reported <= dropped + 10, `reported ${reported}, counted ${dropped}`);
        assert.equal(await (await fetch(`${server.url}/ping`, { signal: AbortSignal.timeout(1000) })).text(), "pong");
        // Logging works again: a new request's line arrives.
        await fetch(`${server.url}/after-the-stall`, { headers: { "x-request-id": "after-stall" } }).then((r) =>
          r.arrayBuffer()
        );
        await eventually(() => server.output().includes("id=after-stall"), 5000, "a line after the stall");
        assert.equal(server.output().match(/log lines dropped/g)!.length, 1, "reported once");
      } finally {
        await server.kill();
      }
    },
  );

  it("paths with %0A, %0D, spaces and ESC sequences give one access-log line, control characters escaped", async () => {
    const server = await startServer({ EMOHAA_BASE_URL: UPSTREAM, LOG_LEVEL: "info" });
    try {
      const forged = "/%0Afake%20line%200%20GET%20/ok%20200%201ms%20id=forged%0D%1B%5B31mred%1B%5B0m%1B%5D0;title%07";
      const answer = await rawRequest(
        server.url,
        `GET ${forged} HTTP/1.1\r\nHost: x\r\nx-request-id: esc-1\r\nConnection: close\r\n\r\n`,
      );
      assert.match(answer, /^HTTP\/1\.1 404/);
      // A raw ESC byte in the request target, if the server's parser lets it through at all.
      await rawRequest(
        server.url,
        `GET /raw\x1b[2Jx HTTP/1.1\r\nHost: x\r\nx-request-id: esc-2\r\nConnection: close\r\n\r\n`,
      );
      await fetch(`${server.url}/marker`, { headers: { "x-request-id": "esc-marker" } }).then((r) => r.arrayBuffer());
      await eventually(() => server.output().includes("id=esc-marker"), 5000, "the marker's line");
      const out = server.output();
      // No control character but the line ends anywhere in what the server printed.
      // deno-lint-ignore no-control-regex -- control characters are what this pattern is about
      assert.doesNotMatch(out, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
      const lines = out.split("\n").filter((l) => l.includes("fake"));
      assert.equal(lines.length, 1, `one line:\n${lines.join("\n")}`);
      assert.match(
        lines[0]!,
        / GET \/%0Afake%20line%200%20GET%20\/ok%20200%201ms%20id=forged%0D%1B\[31mred%1B\[0m%1B\]0;title%07 404 \d+ms(?: code=\S+)? id=esc-1$/,
      );
      assert.ok(!out.split("\n").some((l) => l.startsWith("fake")));
    } finally {
      await server.kill();
    }
  });

  it("the start-up line shows EMOHAA_BASE_URL without user name, password or query string", async () => {
    const server = await startServer({
      EMOHAA_BASE_URL: "http://operator:pw-hunter2@127.0.0.1:9/echo-prod?sig=qs-hunter3",
    });
    try {
      const out = server.output();
      assert.match(out, /listening on http:\/\/\S+ \(upstream http:\/\/127\.0\.0\.1:9\/echo-prod\)/);
      for (const secret of ["operator", "hunter2", "hunter3", "sig="]) {
        assert.ok(!out.includes(secret), `start-up output shows ${secret}`);
      }
    } finally {
      await server.kill();
    }
  });
});
