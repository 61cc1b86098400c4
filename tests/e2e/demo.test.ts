// The demo command: simulator and gateway in one process, usable with the printed demo token.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { serverCommand, startServer } from "../support/server.ts";

const root = new URL("../../", import.meta.url).pathname;
/** The demo runs from source: against a build (E2E_COMMAND) there is none. */
const fromBuild = !!process.env.E2E_COMMAND && "runs from source only";

describe("npm run demo", () => {
  it("starts the simulator and the gateway, and the printed demo token works", { skip: fromBuild }, async () => {
    const cmd = serverCommand();
    const demo = await startServer({}, [...cmd.slice(0, -1), "scripts/demo.ts"]);
    try {
      assert.match(demo.output(), /SIMULATOR/);
      const token = /Demo token:\s+(\S+)/.exec(demo.output())![1]!;
      const res = await fetch(`${demo.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
      });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as any).object, "chat.completion");
    } finally {
      await demo.kill();
    }
  });
});

describe("deno task start", () => {
  it("works in a checkout where npm installed node_modules (the task runs npm's deno executable itself)", {
    skip: fromBuild,
  }, async () => {
    const server = await startServer({}, [`${root}node_modules/.bin/deno`, "task", "start"]);
    try {
      assert.equal(await (await fetch(`${server.url}/ping`)).text(), "pong");
    } finally {
      // deno task runs the server as a grandchild: end the whole tree.
      await fetch(`${server.url}/ping`).catch(() => {});
      await server.killTree();
    }
  });
});
