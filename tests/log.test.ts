import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { batchedLines, createLogger } from "../lib/log.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("createLogger", () => {
  it("writes request lines at info, errors at every level but silent, debug only at debug", () => {
    const out: string[] = [];
    const log = createLogger("info", (l) => out.push(l));
    log.request({ method: "POST", path: "/v1/chat/completions", status: 200, ms: 3, attempts: 2, id: "req_1" });
    log.request({ method: "POST", path: "/v1/chat/completions", status: 502, ms: 3, id: "req_2", code: "upstream_error" });
    log.debug("not shown");
    assert.equal(out.length, 2);
    assert.match(out[0]!, /POST \/v1\/chat\/completions 200 3ms attempts=2 id=req_1$/);
    assert.match(out[1]!, /502 3ms code=upstream_error id=req_2$/);
    const quiet: string[] = [];
    createLogger("silent", (l) => quiet.push(l)).error("x");
    assert.deepEqual(quiet, []);
  });
});

describe("batchedLines", () => {
  it("writes the lines of one window together, in order, once", async () => {
    const writes: string[] = [];
    const b = batchedLines((t) => writes.push(t), 15);
    b.write("a");
    b.write("b");
    assert.deepEqual(writes, []);
    await sleep(40);
    assert.deepEqual(writes, ["a\nb"]);
    b.write("c");
    await sleep(40);
    assert.deepEqual(writes, ["a\nb", "c"]);
  });

  it("flush writes what is pending at once, and nothing when nothing is", () => {
    const writes: string[] = [];
    const b = batchedLines((t) => writes.push(t), 10_000);
    b.flush();
    assert.deepEqual(writes, []);
    b.write("last words");
    b.flush();
    assert.deepEqual(writes, ["last words"]);
    b.flush();
    assert.deepEqual(writes, ["last words"]);
  });
});
