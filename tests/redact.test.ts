// lib/redact.ts: the one rule that masks secrets in URLs, for every message that shows a store URL.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { redactUrls } from "../lib/redact.ts";

describe("redactUrls", () => {
  it("masks the userinfo of a URL, with or without //, and every one in a text", () => {
    assert.equal(redactUrls("redis://user:secret@127.0.0.1:6379/2"), "redis://***@127.0.0.1:6379/2");
    assert.equal(redactUrls("rediss://:secret@host"), "rediss://***@host");
    assert.equal(redactUrls("redis:secret@host"), "redis:***@host");
    assert.equal(redactUrls("redis:/:secret@host"), "redis:/:***@host");
    assert.equal(
      redactUrls("Cannot connect to redis://a:b@h1 or rediss://c:d@h2: refused"),
      "Cannot connect to redis://***@h1 or rediss://***@h2: refused",
    );
  });
  it("leaves what holds no userinfo as it is", () => {
    for (const text of ["redis://127.0.0.1:6379", "kv:/var/lib/state.sqlite3", "kv", "memory", "a@b without a URL"]) {
      assert.equal(redactUrls(text), text);
    }
  });
});
