// End to end: docs/scaling.md's nginx and Caddy snippets, run as written (their upstream and listen lines pointed at
// this test's ports), in front of two gateway instances: SSE frames pass through as they come, requests alternate.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { findCaddy, findNginx, type RunningProxy, startCaddy, startNginx } from "../../scripts/proxy.mjs";
import { type RunningSim, startSim } from "../support/sim.ts";
import { type RunningServer, startServer } from "../support/server.ts";

const docs = readFileSync(new URL("../../docs/scaling.md", import.meta.url), "utf8");

/** The `lang` block of docs/scaling.md. */
function block(lang: string): string {
  const b = docs.match(new RegExp("```" + lang + "\n([\\s\\S]*?)```"))?.[1];
  assert.ok(b, `docs/scaling.md has a ${lang} block`);
  return b;
}

/** The nginx block with its upstream servers and its listen line replaced. */
function nginxConf(upstreams: string[]): string {
  const b = block("nginx");
  const servers = /^(\s*)server 127\.0\.0\.1:\d+;.*\n/gm;
  const indent = servers.exec(b)?.[1] ?? "    ";
  let first = true;
  const conf = b
    .replace(servers, () => (first ? ((first = false), upstreams.map((u) => `${indent}server ${u};\n`).join("")) : ""))
    .replace(/^(\s*)listen 443 ssl;.*$/m, "$1listen 127.0.0.1:{{port}};");
  assert.ok(!first, "the snippet's upstream lists servers on 127.0.0.1");
  assert.match(conf, /listen 127\.0\.0\.1:\{\{port\}\};/, "the snippet listens on 443 with TLS");
  return conf;
}

/** The Caddy block with its site address (plain HTTP on the test's port) and upstreams replaced. */
function caddyConf(upstreams: string[]): string {
  const conf = block("caddyfile")
    .replace(/^api\.example\.com \{/m, "http://127.0.0.1:{{port}} {")
    .replace(/reverse_proxy( 127\.0\.0\.1:\d+)+ \{/, `reverse_proxy ${upstreams.join(" ")} {`);
  assert.match(conf, /^http:\/\/127\.0\.0\.1:\{\{port\}\} \{/m, "the snippet serves api.example.com");
  assert.ok(conf.includes(`reverse_proxy ${upstreams.join(" ")} {`), "the snippet proxies to 127.0.0.1 upstreams");
  return conf;
}

const proxies = [
  {
    name: "nginx",
    skip: !findNginx() && "nginx is not installed (scripts/test.mjs and .ci/run install Debian's nginx as root)",
    start: (upstreams: string[]) => startNginx(nginxConf(upstreams)),
  },
  {
    name: "Caddy",
    skip: !findCaddy() && "caddy is not installed (scripts/test.mjs and .ci/run install Debian's caddy as root)",
    start: (upstreams: string[]) => startCaddy(caddyConf(upstreams)),
  },
];

for (const kind of proxies) {
  describe(`docs/scaling.md's ${kind.name} snippet in front of two instances`, { skip: kind.skip }, () => {
    let sim: RunningSim;
    let servers: RunningServer[] = [];
    let proxy: RunningProxy;
    before(async () => {
      sim = await startSim();
      servers = await Promise.all([1, 2].map(() => startServer({ EMOHAA_BASE_URL: sim.baseUrl, TRUST_PROXY: "true" })));
      proxy = await kind.start(servers.map((s) => new URL(s.url).host));
    });
    after(async () => {
      await proxy?.stop();
      await Promise.all(servers.map((s) => s.kill("SIGKILL").catch(() => null)));
      await sim?.stop();
    });

    const chat = (stream: boolean, content: string) =>
      fetch(`${proxy.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer live-proxy-1,live-proxy-2" },
        body: JSON.stringify({ stream, messages: [{ role: "user", content }] }),
      });

    it("SSE frames arrive as the upstream sends them: the first piece long before the stream ends", async () => {
      const t0 = performance.now();
      const res = await chat(true, "[[pieces:16]] [[delay:100]]");
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = "";
      let firstPiece: number | undefined;
      let reads = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        reads++;
        text += decoder.decode(value, { stream: true });
        if (firstPiece === undefined && /"content":"[^"]/.test(text)) firstPiece = performance.now() - t0;
      }
      const total = performance.now() - t0;
      assert.ok(text.trimEnd().endsWith("data: [DONE]"), text.slice(-200));
      assert.ok(total >= 1_400, `the stream took ${Math.round(total)} ms: the simulator's delays did not apply`);
      assert.ok(firstPiece !== undefined && firstPiece < total - 1_000, `first piece at ${firstPiece} of ${total} ms`);
      assert.ok(reads >= 8, `${reads} reads: frames were held back and sent together`);
    });

    it("requests alternate between the instances (round robin over keep-alive connections)", async () => {
      const served = async () =>
        Promise.all(servers.map(async (s) => {
          const text = await (await fetch(`${s.url}/metrics`)).text();
          return [
            ...text.matchAll(/^emohaa_http_requests_total\{route="\/v1\/chat\/completions",status="200"\} (\d+)$/gm),
          ]
            .reduce((n, m) => n + Number(m[1]), 0);
        }));
      const before = await served();
      for (let i = 0; i < 6; i++) {
        const res = await chat(false, "hi"); // the first on each instance loads its tokenizer: about a second
        assert.equal(res.status, 200);
        assert.equal(((await res.json()) as any).object, "chat.completion");
      }
      const after = await served();
      assert.deepEqual(after.map((n, i) => n - before[i]!), [3, 3]);
    });
  });
}
