// lib/chat/server-tokens.ts: the server-side list from its sources, file reloads that keep the old list when the
// file is unusable, admin changes in memory, in the file and sealed in a state store shared by two instances.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { tokenHash } from "../../lib/chat/pool.ts";
import {
  ADMIN_TOKENS_KEY,
  applyChange,
  editTokenFile,
  seal,
  ServerTokens,
  type ServerTokensOptions,
  unseal,
} from "../../lib/chat/server-tokens.ts";
import { isUsableToken } from "../../lib/http/bearer.ts";
import { memoryStore } from "../../lib/state/memory.ts";

function setup(options: Partial<ServerTokensOptions> = {}, text = "live-f1\n") {
  const files = new Map<string, string>([["/tokens.txt", text]]);
  const logs: string[] = [];
  let changes = 0;
  const tokens = new ServerTokens({
    inline: ["live-env"],
    file: "/tokens.txt",
    readFile: (p) => {
      const t = files.get(p);
      if (t === undefined) throw Object.assign(new Error("ENOENT"), { name: "NotFound" });
      return t;
    },
    writeFile: (p, t) => void files.set(p, t),
    isUsable: isUsableToken,
    log: { info: (m) => logs.push(m), error: (m) => logs.push(m), debug: () => {} },
    onChange: () => changes++,
    ...options,
  });
  tokens.reloadFile(true);
  return { tokens, files, logs, changes: () => changes };
}

describe("applyChange and editTokenFile", () => {
  it("adds once, removes by hash and remembers the removal until the token is added again", () => {
    let o = applyChange({ added: [], removed: [] }, { add: ["a", "b", "a"], remove: [] });
    assert.deepEqual(o, { added: ["a", "b"], removed: [] });
    o = applyChange(o, { add: [], remove: [tokenHash("a"), tokenHash("env")] });
    assert.deepEqual(o.added, ["b"]);
    assert.deepEqual(o.removed, [tokenHash("a"), tokenHash("env")]);
    o = applyChange(o, { add: ["env"], remove: [] });
    assert.deepEqual(o, { added: ["b", "env"], removed: [tokenHash("a")] });
  });

  it("keeps comments and other tokens of a line, drops emptied lines, appends new tokens", () => {
    const text = "# team\nlive-1, live-2 # two\nlive-3\n\n";
    const out = editTokenFile(text, { add: ["live-4", "live-1"], remove: [tokenHash("live-2"), tokenHash("live-3")] });
    assert.equal(out, "# team\nlive-1 # two\nlive-4\n");
  });
});

describe("seal", () => {
  it("round-trips with the key, holds nothing readable, and refuses another key or an altered value", () => {
    const o = { added: ["eyJsecret.token.x"], removed: [tokenHash("y")] };
    const sealed = seal(o, "key-admin-0123456789");
    assert.ok(!JSON.stringify(sealed).includes("secret"));
    assert.deepEqual(unseal(sealed, "key-admin-0123456789"), o);
    assert.throws(() => unseal(sealed, "key-admin-other-000000"));
    const bytes = Buffer.from(sealed.sealed, "base64");
    bytes[bytes.length - 1]! ^= 1;
    assert.throws(() => unseal({ v: 1, sealed: bytes.toString("base64") }, "key-admin-0123456789"));
  });
});

describe("ServerTokens", () => {
  it("lists the environment's and the file's tokens once each, with their origin", () => {
    const { tokens } = setup({}, "live-f1\nlive-env\n");
    assert.deepEqual(tokens.list(), ["live-env", "live-f1"]);
    assert.equal(tokens.origin("live-env"), "env");
    assert.equal(tokens.origin("live-f1"), "file");
    assert.equal(tokens.persistence, "file");
  });

  it("a reload takes a new file whole; a missing, empty or broken one keeps the old list and says why", () => {
    const { tokens, files, changes } = setup();
    files.set("/tokens.txt", "live-f2\nlive-f3\n");
    assert.equal(tokens.reloadFile(), 3);
    assert.equal(changes(), 2);
    for (
      const [text, why] of [
        [undefined, /cannot read EMOHAA_TOKENS_FILE \(NotFound\)/],
        ["# soon\n", /holds no token/],
        [
          "live-f4\nlive-half wa",
          /entry 2 is not a token/,
        ],
      ] as const
    ) {
      if (text === undefined) files.delete("/tokens.txt");
      else files.set("/tokens.txt", text);
      assert.throws(() => tokens.reloadFile(), why);
      assert.deepEqual(tokens.list(), ["live-env", "live-f2", "live-f3"]);
    }
  });

  it("file persistence: adds and removes rewrite the file; a token of EMOHAA_TOKENS cannot be removed there", async () => {
    const { tokens, files } = setup();
    await tokens.apply({ add: ["live-new"], remove: [tokenHash("live-f1")] });
    assert.equal(files.get("/tokens.txt"), "live-new\n");
    assert.deepEqual(tokens.list(), ["live-env", "live-new"]);
    await assert.rejects(tokens.apply({ add: [], remove: [tokenHash("live-env")] }), {
      code: "token_from_environment",
    });
  });

  it("memory persistence: without a file writer, changes (an environment token's removal too) stay in memory", async () => {
    const { tokens } = setup({ file: undefined, writeFile: undefined });
    assert.equal(tokens.persistence, "memory");
    await tokens.apply({ add: ["live-m1"], remove: [tokenHash("live-env")] });
    assert.deepEqual(tokens.list(), ["live-m1"]);
    assert.equal(tokens.origin("live-m1"), "admin");
  });

  it("state persistence: two instances on one store see each other's changes at their next poll, sealed", async () => {
    const store = memoryStore();
    const shared = { file: undefined, store, sealKey: "key-admin-0123456789" };
    const a = setup(shared).tokens;
    const b = setup(shared).tokens;
    assert.equal(a.persistence, "state");
    await a.apply({ add: ["live-s1"], remove: [] });
    assert.deepEqual(a.list(), ["live-env", "live-s1"]);
    assert.deepEqual(b.list(), ["live-env"]);
    await b.poll();
    assert.deepEqual(b.list(), ["live-env", "live-s1"]);
    await b.apply({ add: ["live-s2"], remove: [tokenHash("live-env")] });
    await a.poll();
    assert.deepEqual(a.list(), ["live-s1", "live-s2"]);
    const stored = await store.get(ADMIN_TOKENS_KEY);
    assert.ok(!JSON.stringify(stored).includes("live-s"));
    // Another ADMIN_KEY cannot read it: ignored, logged once.
    const other = setup({ ...shared, sealKey: "key-admin-other-000000" });
    await other.tokens.poll();
    await other.tokens.poll();
    assert.deepEqual(other.tokens.list(), ["live-env"]);
    assert.equal(other.logs.filter((l) => l.includes("sealed with another ADMIN_KEY")).length, 1);
    await store.close();
  });

  it("state persistence without ADMIN_KEY refuses changes with 403", async () => {
    const { tokens } = setup({ file: undefined, store: memoryStore() });
    await assert.rejects(tokens.apply({ add: ["live-x"], remove: [] }), { status: 403, code: "admin_key_required" });
  });
});
