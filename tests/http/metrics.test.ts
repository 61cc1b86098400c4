import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { eventually } from "../support/sim.ts";
import { sseEvents, testApp, user } from "../support/app.ts";
import { Metrics } from "../../lib/http/metrics.ts";

/** Parses Prometheus text into `name{labels}` -> value, checking every line is well formed. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.trim().split("\n")) {
    if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (-?[\d.e+-]+|\+Inf|NaN)$/.exec(line);
    assert.ok(m, `bad metrics line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

describe("GET /metrics", () => {
  it("counts requests by route and status, first-piece latency, conversations and pool states after a run", async () => {
    const t = await testApp();
    await t.chat(user("hi"));
    await sseEvents(await t.chat({ stream: true, ...user("hi") }));
    await t.chat(user("hi"), "expired-m");
    await t.app.request("/no/such/path");
    await eventually(() => t.sim.state().open === 0);
    const res = await t.app.request("/metrics");
    assert.match(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const m = parse(text);
    assert.equal(m.get('emohaa_http_requests_total{route="/v1/chat/completions",status="200"}'), 2);
    assert.equal(m.get('emohaa_http_requests_total{route="/v1/chat/completions",status="401"}'), 1);
    assert.equal(m.get('emohaa_http_requests_total{route="unmatched",status="404"}'), 1);
    assert.equal(m.get("emohaa_upstream_first_piece_seconds_count"), 2);
    assert.equal(m.get('emohaa_upstream_first_piece_seconds_bucket{le="+Inf"}'), 2);
    assert.equal(m.get("emohaa_streams_in_flight"), 0);
    assert.equal(m.get("emohaa_conversations_open"), 0);
    assert.equal(m.get("emohaa_conversation_deletions_failed_total"), 0);
    assert.equal(m.get('emohaa_tokens{state="cooling"}'), 1);
    assert.equal(m.get('emohaa_tokens{state="healthy"}'), 1);
    assert.ok(!text.includes("expired-m") && !text.includes("live-1"));
  });
});

describe("Metrics", () => {
  it("reports the log lines dropped by the log's writer, 0 when it is not wired", () => {
    const snapshot = {
      conversationsOpen: 0,
      deletionsFailed: 0,
      pool: { healthy: 0, cooling: 0, busy: 0, waiting: 0 },
    };
    let dropped = 7;
    const m = new Metrics({ logLinesDropped: () => dropped });
    assert.equal(parse(m.render(snapshot)).get("emohaa_log_lines_dropped_total"), 7);
    dropped = 9;
    assert.equal(parse(m.render(snapshot)).get("emohaa_log_lines_dropped_total"), 9);
    assert.equal(parse(new Metrics().render(snapshot)).get("emohaa_log_lines_dropped_total"), 0);
  });
});
