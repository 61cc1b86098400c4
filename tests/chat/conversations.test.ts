// Conversations: each deleted once, with retries; a deletion that gives up is counted and told why, never by cid.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Conversations } from "../../lib/chat/conversations.ts";
import type { EmohaaClient } from "../../lib/upstream/emohaa.ts";
import { UpstreamError } from "../../lib/upstream/errors.ts";

const failing = (err: () => Error, failures = Infinity) => {
  let calls = 0;
  const client = {
    deleteConversation: async () => {
      if (calls++ < failures) throw err();
    },
  } as unknown as EmohaaClient;
  return { client, calls: () => calls };
};
const upstream = (kind: "auth" | "server") =>
  new UpstreamError(kind, kind === "auth" ? 401 : 502, "x", { code: `upstream_${kind}` });

/** Conversations that retry deletes 3 times with no wait, and what they said when they gave up. */
function withRetries(client: ConstructorParameters<typeof Conversations>[0]) {
  const gaveUp: [string, number][] = [];
  const c = new Conversations(client, async () => {}, [1, 1, 1], undefined, (r, n) => gaveUp.push([r, n]));
  return { c, gaveUp };
}

describe("Conversations", () => {
  it("retries a failed delete with backoff and succeeds without telling anyone", async () => {
    const f = failing(() => upstream("server"), 2);
    const { c, gaveUp } = withRetries(f.client);
    c.created("live-x", "cid-1");
    assert.equal(await c.delete("live-x", "cid-1"), true);
    assert.equal(f.calls(), 3);
    assert.deepEqual(gaveUp, []);
    assert.equal(c.open, 0);
    assert.equal(c.deleteFailures, 0);
  });

  it("gives up after every retry and says why and after how many attempts, with no cid or token", async () => {
    const f = failing(() => upstream("server"));
    const { c, gaveUp } = withRetries(f.client);
    c.created("live-secret-token", "cid-secret");
    assert.equal(await c.delete("live-secret-token", "cid-secret"), false);
    assert.deepEqual(gaveUp, [["server", 4]]);
    assert.equal(c.deleteFailures, 1);
    assert.equal(c.open, 0);
  });

  it("a rejected token gives up at once: it could not delete later either", async () => {
    const f = failing(() => upstream("auth"));
    const { c, gaveUp } = withRetries(f.client);
    c.created("live-x", "cid-1");
    assert.equal(await c.delete("live-x", "cid-1"), false);
    assert.deepEqual(gaveUp, [["auth", 1]]);
    // A failure that is not the upstream's: named by its kind of error only.
    const g = failing(() => new TypeError("socket hang up: cid-2"));
    const c2 = new Conversations(g.client, async () => {}, [], undefined, (r, n) => gaveUp.push([r, n]));
    c2.created("live-x", "cid-2");
    await c2.delete("live-x", "cid-2");
    assert.deepEqual(gaveUp.at(-1), ["TypeError", 1]);
  });
});
