// The playground with native multi-turn, in headless Chromium against the server process and the simulator.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { browserSkip, launchBrowser, openPage } from "../support/browser.ts";
import { type RunningServer, startServer } from "../support/server.ts";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";

const skip = browserSkip();
const opts = { skip, timeout: 30_000 };

describe("playground with kept conversations", () => {
  let browser: Browser;
  let sim: RunningSim;
  let server: RunningServer;

  before(async () => {
    if (skip) return;
    sim = await startSim();
    server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, LOG_LEVEL: "error", CONTINUE_CONVERSATIONS: "true" });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.kill();
    await sim?.stop();
  });

  async function say(page: Page, text: string, n: number) {
    await page.getByLabel("Message", { exact: true }).fill(text);
    await page.getByLabel("Message", { exact: true }).press("Enter");
    await page.locator('.msg.assistant[data-state="done"]').nth(n - 1).waitFor();
  }

  it('shows a continued reply, and "New chat" ends the conversation at once', opts, async () => {
    const w = await openPage(browser, new URL(server.url).origin);
    const { page } = w;
    await page.goto(`${server.url}/`);
    await page.getByLabel("Tokens", { exact: true }).fill("live-ui-mt-1");
    const before = sim.sim.state();
    await say(page, "第一句 [[reply:一]]", 1);
    await say(page, "第二句 [[recall]]", 2);
    const second = page.locator(".msg.assistant").nth(1);
    assert.equal(await second.getAttribute("data-continuation"), "continued");
    assert.match((await second.locator(".meta").textContent())!, /continued the conversation/);
    assert.equal(await page.locator(".msg.assistant").first().getAttribute("data-continuation"), "new");
    // The upstream conversation remembers the first line: only the new one was sent.
    assert.equal(await second.locator(".bubble").textContent(), "user:第一句 [[reply:一]]\nuser:第二句 [[recall]]");
    assert.equal(sim.sim.state().open, before.open + 1);

    await page.getByRole("button", { name: "New chat" }).click();
    await eventually(() => sim.sim.state().open === before.open, 5000, "ended at once");
    assert.ok(w.requests.some((u) => /\/v1\/conversations\/conv-/.test(u)), "the DELETE call");
    assert.deepEqual(w.errors, []);
    await w.context.close();
  });

  it('"Forget tokens" ends the kept conversation with the tokens that made it', opts, async () => {
    const w = await openPage(browser, new URL(server.url).origin);
    const { page } = w;
    await page.goto(`${server.url}/`);
    await page.getByLabel("Tokens", { exact: true }).fill("live-ui-mt-2");
    const before = sim.sim.state();
    await say(page, "你好", 1);
    assert.equal(sim.sim.state().open, before.open + 1);
    await page.getByRole("button", { name: "Forget tokens" }).click();
    await eventually(() => sim.sim.state().open === before.open, 5000, "ended at once");
    assert.equal(sim.sim.state().badDeletes, before.badDeletes);
    assert.deepEqual(w.errors, []);
    await w.context.close();
  });
});
