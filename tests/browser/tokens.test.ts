// The playground's token lifecycle in headless Chromium: each token's end, the warnings, and the admin card, against
// real server processes (client tokens; server-side tokens with ADMIN_KEY) wired to the simulator.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Browser } from "playwright-core";
import { browserSkip, launchBrowser, openPage } from "../support/browser.ts";
import { inSeconds, makeJwt } from "../support/jwt.ts";
import { type RunningServer, startServer } from "../support/server.ts";
import { type RunningSim, startSim } from "../support/sim.ts";

const skip = browserSkip();
const opts = { skip, timeout: 30_000 };
const ADMIN = "key-admin-browser-0001";
const label = (token: string) => `…${createHash("sha256").update(token).digest("hex").slice(-4)}`;

describe("playground token lifecycle in Chromium", () => {
  let browser: Browser;
  let sim: RunningSim;
  let client: RunningServer;
  let server: RunningServer;
  const held = makeJwt({ exp: inSeconds(30 * 60), sub: "sub-claim-held" });

  before(async () => {
    if (skip) return;
    sim = await startSim();
    [client, server] = await Promise.all([
      startServer({ EMOHAA_BASE_URL: sim.baseUrl, LOG_LEVEL: "error" }),
      startServer({ EMOHAA_BASE_URL: sim.baseUrl, EMOHAA_TOKENS: held, API_KEYS: "gk-browser", ADMIN_KEY: ADMIN }),
    ]);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await Promise.all([client?.kill(), server?.kill()]);
    await sim?.stop();
  });

  async function playground(at: RunningServer, tokens: string) {
    const w = await openPage(browser, new URL(at.url).origin);
    await w.page.goto(`${at.url}/`);
    await w.page.getByLabel("Tokens", { exact: true }).fill(tokens);
    return w;
  }

  it("shows when each pasted token ends, warns near the end, and before a send that would fail", opts, async () => {
    const far = makeJwt({ exp: inSeconds(5 * 3600 + 120), sub: "sub-claim-far" });
    const soon = makeJwt({ exp: inSeconds(40 * 60 + 30), sub: "sub-claim-soon" });
    const w = await playground(client, `${far}\n${soon}\nlive-opaque-1`);
    const { page } = w;
    const items = page.locator(".expiry-list li");
    await items.nth(1).waitFor();
    assert.equal(await items.count(), 2, "a token with no exp shows no end");
    assert.match((await items.nth(0).textContent())!, /expires in 5 h$/);
    assert.match((await items.nth(1).textContent())!, /expires in 40 min$/);
    assert.equal(await items.nth(1).locator(".expiry").getAttribute("data-expiry"), "soon");
    assert.match((await page.locator(".tokens-card .warn-note").textContent())!, /near its end/);
    assert.equal(await page.locator(".send-warning").count(), 0, "a send would not fail");

    await page.getByLabel("Tokens", { exact: true }).fill(makeJwt({ exp: inSeconds(-120), sub: "sub-claim-gone" }));
    await page.locator(".send-warning").waitFor();
    assert.match((await page.locator(".send-warning").textContent())!, /Every token has expired/);
    assert.equal(await page.locator('.expiry-list [data-expiry="expired"]').count(), 1);
    assert.deepEqual(w.errors, []);
    await w.context.close();
  });

  it(
    "the admin card lists, adds, replaces and removes the server's tokens; the pool shows their ends",
    opts,
    async () => {
      const w = await playground(server, "gk-browser");
      const { page } = w;
      // The pool card shows the server's own token with its end, from /v1/tokens/status.
      const poolRow = page.locator(".pool-list li").first();
      await poolRow.locator(".expiry").waitFor();
      assert.match((await poolRow.textContent())!, /expires in (29|30) min/);

      await page.locator(".admin-card summary").click();
      await page.getByLabel("Admin key").fill("gk-browser");
      await page.getByRole("button", { name: "Load" }).click();
      await page.locator(".admin-card .pool-error").waitFor();
      assert.match((await page.locator(".admin-card .pool-error").textContent())!, /Invalid admin key/);

      await page.getByLabel("Admin key").fill(ADMIN);
      await page.getByRole("button", { name: "Load" }).click();
      const rows = page.locator(".admin-list li");
      await rows.first().waitFor();
      assert.equal(await rows.count(), 1);
      assert.equal(await rows.first().getAttribute("data-label"), label(held));
      assert.match((await page.locator("[data-persistence]").textContent())!, /memory only/);

      const added = makeJwt({ exp: inSeconds(5 * 3600 + 120), sub: "sub-claim-added" });
      await page.getByLabel(/Add tokens/).fill(added);
      await page.getByRole("button", { name: "Add", exact: true }).click();
      await page.locator(`.admin-list li[data-label="${label(added)}"]`).waitFor();
      assert.match(
        (await page.locator(`.admin-list li[data-label="${label(added)}"]`).textContent())!,
        /expires in 5 h/,
      );

      const newer = `live-browser-${crypto.randomUUID().slice(0, 6)}`;
      const row = page.locator(`.admin-list li[data-label="${label(added)}"]`);
      await row.getByRole("button", { name: "Replace" }).click();
      await row.getByLabel("New token").fill(newer);
      await row.getByRole("button", { name: "Save" }).click();
      await page.locator(`.admin-list li[data-label="${label(newer)}"]`).waitFor();
      assert.equal(await page.locator(`.admin-list li[data-label="${label(added)}"]`).count(), 0);

      await page.locator(`.admin-list li[data-label="${label(held)}"]`).getByRole("button", { name: "Remove" }).click();
      await page.locator(`.admin-list li[data-label="${label(held)}"]`).waitFor({ state: "detached" });
      assert.equal(await rows.count(), 1);

      // The server uses the new token: a chat from the page goes through it.
      const before = sim.sim.state().callsByToken[newer] ?? 0;
      await page.getByLabel("Message", { exact: true }).fill("hello");
      await page.getByRole("button", { name: "Send" }).click();
      await page.locator('.transcript .msg.assistant[data-state="done"]').waitFor();
      assert.ok((sim.sim.state().callsByToken[newer] ?? 0) > before, "the chat used the new token");
      assert.deepEqual(w.errors.filter((e) => !/401/.test(e)), []);
      await w.context.close();
      server.assertPrivate();
    },
  );
});
