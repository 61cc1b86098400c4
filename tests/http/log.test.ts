import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { batchedLines, createLogger, displayUrl, escapeControl, maskedPath, maskId } from "../../lib/http/log.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("createLogger", () => {
  it("writes request lines at info, errors at every level but silent, debug only at debug", () => {
    const out: string[] = [];
    const log = createLogger("info", (l) => out.push(l));
    log.request({ method: "POST", path: "/v1/chat/completions", status: 200, ms: 3, attempts: 2, id: "req_1" });
    log.request({
      method: "POST",
      path: "/v1/chat/completions",
      status: 502,
      ms: 3,
      id: "req_2",
      code: "upstream_error",
    });
    log.debug("not shown");
    assert.equal(out.length, 2);
    assert.match(out[0]!, /POST \/v1\/chat\/completions 200 3ms attempts=2 id=req_1$/);
    assert.match(out[1]!, /502 3ms code=upstream_error id=req_2$/);
    const quiet: string[] = [];
    createLogger("silent", (l) => quiet.push(l)).error("x");
    assert.deepEqual(quiet, []);
  });
});

describe("maskedPath", () => {
  it("masks response ids and conversation handles by their route, keeping the kind and 4 hex digits of a hash", () => {
    const id = "resp_3f9c2b7e1d5a4c08aa";
    const shown = maskedPath(`/v1/responses/${id}`, "/v1/responses/:response_id");
    assert.match(shown, /^\/v1\/responses\/resp_…[0-9a-f]{4}$/);
    assert.ok(!shown.includes("3f9c2b7e"));
    assert.equal(shown, maskedPath(`/v1/responses/${id}`, "/v1/responses/:response_id"), "one id, one mask");
    assert.notEqual(shown, maskedPath("/v1/responses/resp_other", "/v1/responses/:response_id"));
    assert.match(
      maskedPath("/v1/conversations/conv-abc123", "/v1/conversations/:handle"),
      /^\/v1\/conversations\/conv-…[0-9a-f]{4}$/,
    );
    assert.match(maskId("x y"), /^…[0-9a-f]{4}$/);
  });

  it("leaves other paths alone, parameters of other names too", () => {
    assert.equal(maskedPath("/v1/models/emohaa", "/v1/models/:model"), "/v1/models/emohaa");
    assert.equal(maskedPath("/v1/chat/completions", "/v1/chat/completions"), "/v1/chat/completions");
    assert.equal(maskedPath("/nowhere/resp_1", "unmatched"), "/nowhere/resp_1");
  });
});

describe("createLogger escaping", () => {
  it("keeps a path with CR/LF, ESC and spaces on one line, its control characters and spaces percent-encoded", () => {
    const out: string[] = [];
    const log = createLogger("info", (l) => out.push(l));
    log.request({ method: "GET", path: "/\nfake 200 1ms id=x\r\u001b[31mred\u2028", status: 404, ms: 1, id: "req_1" });
    log.error("unhandled TypeError on GET /a\nb\u001b[0m");
    assert.equal(out.length, 2);
    // deno-lint-ignore no-control-regex -- control characters are what this pattern is about
    for (const line of out) assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
    assert.match(out[0]!, / GET \/%0Afake%20200%201ms%20id=x%0D%1B\[31mred%E2%80%A8 404 1ms id=req_1$/);
    assert.match(out[1]!, /ERROR unhandled TypeError on GET \/a\\x0ab\\x1b\[0m$/);
  });
});

describe("escapeControl", () => {
  it("escapes C0, DEL, C1 and line separators, and leaves other text alone", () => {
    assert.equal(escapeControl("a\tb\u007f\u0085\u2029é中"), "a\\x09b\\x7f\\x85\\u2029é中");
  });
});

describe("displayUrl", () => {
  it("drops user name, password, query and fragment", () => {
    assert.equal(displayUrl("https://user:s3cret@up.example/echo-prod?token=abc#frag"), "https://up.example/echo-prod");
    assert.equal(displayUrl("http://127.0.0.1:9/echo-prod"), "http://127.0.0.1:9/echo-prod");
    assert.equal(displayUrl("not a url"), "(not a valid URL)");
  });
});

describe("batchedLines", () => {
  it("writes the lines of one window together, in order, once", async () => {
    const writes: string[] = [];
    const b = batchedLines((t) => void writes.push(t), { flushMs: 15 });
    b.write("a");
    b.write("b");
    assert.deepEqual(writes, []);
    await sleep(40);
    assert.deepEqual(writes, ["a\nb\n"]);
    b.write("c");
    await sleep(40);
    assert.deepEqual(writes, ["a\nb\n", "c\n"]);
  });

  it("flush writes what is pending at once, and nothing when nothing is", async () => {
    const writes: string[] = [];
    const b = batchedLines((t) => void writes.push(t), { flushMs: 10_000 });
    await b.flush();
    assert.deepEqual(writes, []);
    b.write("last words");
    await b.flush();
    assert.deepEqual(writes, ["last words\n"]);
    await b.flush();
    assert.deepEqual(writes, ["last words\n"]);
  });

  it("keeps one write outstanding; while it hangs, holds lines up to the bound, drops and counts the rest, then reports once", async () => {
    const writes: string[] = [];
    let release: () => void = () => {};
    let hang = true;
    const reports: number[] = [];
    const b = batchedLines(
      (t) => {
        writes.push(t);
        if (hang) return new Promise<void>((r) => (release = r));
      },
      { flushMs: 1, maxChars: 100, onDropped: (n) => (reports.push(n), b.write(`dropped ${n}`)) },
    );
    b.write("x".repeat(9));
    await sleep(10);
    assert.equal(writes.length, 1); // in flight, and it hangs
    for (let i = 0; i < 20; i++) b.write(`line ${String(i).padStart(4, "0")}`); // 10 characters each
    await sleep(10);
    assert.equal(writes.length, 1, "no second write while the first is outstanding");
    // 100 characters: the 10 in flight and 9 lines of 10 more.
    assert.equal(b.dropped, 11);
    assert.deepEqual(reports, []);
    hang = false;
    release();
    await b.flush();
    // The report gets past the bound (the buffer is still full when it is made) and joins the next batch.
    assert.deepEqual(reports, [11]);
    assert.equal(writes[1], Array.from({ length: 9 }, (_, i) => `line 000${i}\n`).join("") + "dropped 11\n");
    b.write("after");
    await b.flush();
    assert.deepEqual(reports, [11], "reported once");
    assert.equal(b.dropped, 11);
  });

  it("counts the lines of a failed write as dropped and goes on", async () => {
    let fail = true;
    const writes: string[] = [];
    const b = batchedLines(async (t) => {
      if (fail) throw new Error("EPIPE");
      writes.push(t);
    }, { flushMs: 1 });
    b.write("a");
    b.write("b");
    await b.flush();
    assert.equal(b.dropped, 2);
    fail = false;
    b.write("c");
    await b.flush();
    assert.deepEqual(writes, ["c\n"]);
  });
});
