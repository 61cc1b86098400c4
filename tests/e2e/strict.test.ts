// End to end: the HTTP/1.1 edge's strictness over raw TCP, and refused bodies answered rather than reset. The server's
// head timeout is 10 s here: whatever is answered well before it was answered because it could not be valid.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import net from "node:net";
import OpenAI from "openai";
import { rawClient } from "../support/raw-client.ts";
import { type RunningSim, startSim } from "../support/sim.ts";
import { ownServer, type RunningServer, startServer } from "../support/server.ts";

let sim: RunningSim;
let server: RunningServer;
let port: number;
before(async () => {
  sim = await startSim();
  server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, HTTP_HEADER_TIMEOUT_MS: "10000" });
  port = Number(new URL(server.url).port);
});
after(async () => {
  await server?.kill();
  await sim?.stop();
});

/** Sends raw bytes on a fresh connection; resolves with what came back and when the server closed (ms). */
async function exchange(request: string | Uint8Array): Promise<{ text: string; ms: number }> {
  const c = rawClient(port);
  c.send(request);
  const ms = await c.closed;
  return { text: c.received(), ms };
}

const platformServes = !ownServer && "the platform's HTTP server serves here, not lib/http/server.ts";

describe("HTTP/1.1 strictness over raw TCP", { skip: platformServes }, () => {
  const early: [string, string | Uint8Array, number][] = [
    ["garbage (a TLS ClientHello)", new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03]), 400],
    ["an HTTP/0.9 request line", "GET /\r\n", 400],
    ["a request line with no version", "GET / \r\n", 400],
    ["a malformed version", "GET / HTTP/1\r\n", 400],
    ["a zero-padded version", "GET /ping HTTP/01.01\r\nHost: x\r\n\r\n", 400],
    ["a 100 KB method", `${"G".repeat(100_000)} / HTTP/1.1\r\nHost: x\r\n\r\n`, 400],
    ["a lowercase method", "get /ping HTTP/1.1\r\nHost: x\r\n\r\n", 501],
    ["TRACE", "TRACE /ping HTTP/1.1\r\nHost: x\r\n\r\n", 501],
    ["a well-formed version not spoken", "GET /ping HTTP/2.0\r\nHost: x\r\n\r\n", 505],
  ];
  for (const [what, request, status] of early) {
    it(`${what}: ${status} and closed at once, not at the head timeout`, async () => {
      const { text, ms } = await exchange(request);
      assert.match(text, new RegExp(`^HTTP/1\\.1 ${status} `));
      assert.ok(ms < 5000, `closed after ${ms} ms`);
    });
  }

  it("a GET with a body is served, the same on every runtime", async () => {
    const { text } = await exchange(
      "GET /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert.match(text, /^HTTP\/1\.1 200 [\s\S]*\r\n\r\npong$/);
  });

  it("Content-Length: 999999999 with no body: 413 at once, and the connection closes", async () => {
    const { text, ms } = await exchange(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer live-strict\r\n" +
        "Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n",
    );
    assert.match(text, /^HTTP\/1\.1 413 [\s\S]*Connection: close\r\n/);
    assert.ok(ms < 5000, `closed after ${ms} ms`);
  });

  it("a chunk extension outside RFC 9112's grammar fails the body", async () => {
    for (const ext of ["5;", "5;bad[=x", "5;\0ext"]) {
      const { text } = await exchange(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer live-strict\r\n" +
          `Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${ext}\r\n{"a":\r\n0\r\n\r\n`,
      );
      assert.match(text, /^HTTP\/1\.1 4\d\d /, JSON.stringify(ext));
      assert.doesNotMatch(text, /^HTTP\/1\.1 (200|401|413) /, JSON.stringify(ext));
    }
    assert.equal(sim.sim.state().callsByToken["live-strict"], undefined, "nothing reached the upstream");
  });
});

describe("refused bodies are answered, not reset", () => {
  const MiB = 1024 * 1024;

  it("a client that reads only after sending its whole 4 MiB body still finds its 413 (no reset lost it)", async () => {
    // A busy client reads late: closed with its body unread, the server's kernel would reset the connection, and the
    // client's kernel drop the answer it had not read yet.
    const answers = await Promise.all(Array.from({ length: 4 }, () =>
      new Promise<string>((resolve) => {
        const s = net.connect(port, "127.0.0.1");
        let text = "";
        s.pause();
        s.on("data", (b) => (text += b.toString("latin1")));
        s.on("error", (e: NodeJS.ErrnoException) => (text += ` [${e.code}]`));
        s.on("close", () => resolve(text));
        s.on("connect", () => {
          const body = Buffer.alloc(4 * MiB, "x");
          s.write(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer live-big\r\n" +
              `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
          );
          s.write(body, () => setTimeout(() => s.resume(), 300));
        });
      })));
    for (const a of answers) assert.match(a, /^HTTP\/1\.1 413 /, a.slice(0, 80));
  });
  const message = (size: number) => JSON.stringify({ messages: [{ role: "user", content: "x".repeat(size) }] });

  it("the runtime's fetch: 2, 8 and 20 MiB bodies, 6 at once each, all get their 413", async () => {
    for (const size of [2 * MiB, 8 * MiB, 20 * MiB]) {
      const body = message(size);
      const statuses = await Promise.all(Array.from({ length: 6 }, () =>
        fetch(`${server.url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: "Bearer live-big", "content-type": "application/json" },
          body,
        }).then(async (r) => (await r.text(), r.status), (e: Error) => `${e.name}: ${e.message}`)));
      assert.deepEqual(statuses, Array(6).fill(413), `${size / MiB} MiB`);
    }
  });

  it("Node's fetch and curl: 2 and 20 MiB bodies all get their 413", async () => {
    const run = (cmd: string, args: string[], input?: string) =>
      new Promise<string>((resolve) => {
        const child = execFile(cmd, args, { maxBuffer: 1 << 20 }, (err, stdout, stderr) =>
          resolve(err ? `${err.message} ${stderr}` : stdout.trim()));
        if (input !== undefined) {
          child.stdin!.end(input);
        }
      });
    const node = `
      const size = Number(process.argv[1]);
      const body = JSON.stringify({ messages: [{ role: "user", content: "x".repeat(size) }] });
      const all = await Promise.all(Array.from({ length: 4 }, () => fetch(process.argv[2], {
        method: "POST", headers: { authorization: "Bearer live-big", "content-type": "application/json" }, body,
      }).then(async (r) => (await r.text(), r.status), (e) => String(e.cause?.code ?? e))));
      console.log(all.join(","));`;
    for (const size of [2 * MiB, 20 * MiB]) {
      const url = `${server.url}/v1/chat/completions`;
      const fromNode = await run("node", ["--input-type=module", "-e", node, String(size), url]);
      assert.equal(fromNode, "413,413,413,413", `node, ${size / MiB} MiB`);
      const curl = await run("curl", [
        ...["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", url],
        ...["-H", "authorization: Bearer live-big", "-H", "content-type: application/json", "--data-binary", "@-"],
      ], message(size));
      assert.equal(curl, "413", `curl, ${size / MiB} MiB`);
    }
  });

  it("the openai SDK gets a 413 APIError at once, with no retries", async () => {
    let requests = 0;
    const client = new OpenAI({
      apiKey: "live-big",
      baseURL: `${server.url}/v1`,
      fetch: (input, init) => (requests++, fetch(input, init)),
    });
    for (const size of [2 * MiB, 20 * MiB]) {
      const err = await client.chat.completions.create({
        model: "emohaa",
        messages: [{ role: "user", content: "x".repeat(size) }],
      }).then(() => undefined, (e) => e);
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.equal(err.status, 413, `${size / MiB} MiB: ${err}`);
    }
    // A connection error would have been retried twice per request.
    assert.equal(requests, 2);
  });
});
