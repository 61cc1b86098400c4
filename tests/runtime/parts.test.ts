import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { platformDefaults } from "../../runtime/parts.ts";
import { hasKv } from "../../runtime/kv.ts";

describe("platformDefaults", () => {
  it("puts the state in Deno KV where KV opens and STATE is unset (Deno Deploy: no setting needed), else in memory with no journal", () => {
    const d = platformDefaults({});
    assert.equal(d.UPSTREAM_CLIENT, "fetch");
    if (hasKv()) assert.deepEqual(d, { UPSTREAM_CLIENT: "fetch", STATE: "kv" });
    else {
      assert.deepEqual(d, {
        UPSTREAM_CLIENT: "fetch",
        STATE: "memory",
        JOURNAL: "off",
        CONTINUE_CONVERSATIONS: "false",
      });
    }
  });

  it("keeps a STATE that is set: memory turns the journal and kept conversations off, a shared store keeps them", () => {
    assert.deepEqual(platformDefaults({ STATE: "memory" }), {
      UPSTREAM_CLIENT: "fetch",
      STATE: "memory",
      JOURNAL: "off",
      CONTINUE_CONVERSATIONS: "false",
    });
    assert.deepEqual(platformDefaults({ STATE: "redis://r:6379" }), {
      UPSTREAM_CLIENT: "fetch",
      STATE: "redis://r:6379",
    });
    assert.deepEqual(platformDefaults({ STATE: "kv:/tmp/s.sqlite3" }), {
      UPSTREAM_CLIENT: "fetch",
      STATE: "kv:/tmp/s.sqlite3",
    });
  });
});
