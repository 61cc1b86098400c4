// The Swagger UI page in headless Chromium against the real server process: rendered offline, same origin only.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { browserSkip, launchBrowser, openPage } from "../support/browser.ts";
import { type RunningServer, startServer } from "../support/server.ts";
import { type RunningSim, startSim } from "../support/sim.ts";

const opts = { skip: browserSkip(), timeout: 30_000 };

describe("/docs in Chromium", () => {
  let browser: Browser;
  let sim: RunningSim;
  let server: RunningServer;

  before(async () => {
    if (opts.skip) return;
    sim = await startSim();
    server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, LOG_LEVEL: "error" });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.kill();
    await sim?.stop();
  });

  it(
    "renders every operation from /openapi.json, and its examples, with no request leaving the origin",
    opts,
    async () => {
      const origin = new URL(server.url).origin;
      const w = await openPage(browser, origin);
      const { page } = w;
      await page.goto(`${server.url}/docs`);
      await page.locator(".opblock").first().waitFor();
      const paths = await page.locator(".opblock-summary-path").allTextContents();
      for (
        const p of [
          "/v1/chat/completions",
          "/v1/responses",
          "/v1/responses/{response_id}",
          "/token/check",
          "/v1/models",
          "/ping",
        ]
      ) {
        assert.ok(
          paths.map((x) => x.replace(/\u200b/g, "")).includes(p),
          `${p} in ${paths}`,
        );
      }
      assert.equal(
        await page.locator(".info .title").first().innerText().then((t) => t.split("\n")[0]),
        "emohaa-free-api",
      );

      const chat = page.locator("#operations-Chat-createChatCompletion");
      await chat.locator(".opblock-summary-control").click();
      await chat.locator(".responses-table").first().waitFor();
      const responses = await chat.locator(".responses-table .response-col_status").allTextContents();
      for (const s of ["200", "400", "401", "429", "502", "504"]) {
        assert.ok(
          responses.map((x) => x.trim()).includes(s),
          `${s} in ${responses}`,
        );
      }
      assert.match(
        await chat.locator(".opblock-section-request-body").innerText(),
        /One question, whole answer as JSON/,
      );

      // "Try it out" calls this server, under the page's policy.
      const ping = page.locator("#operations-Health-ping");
      await ping.locator(".opblock-summary-control").click();
      await ping.getByRole("button", { name: "Try it out" }).click();
      await ping.getByRole("button", { name: "Execute" }).click();
      await ping.locator(".live-responses-table .response-col_description pre").first().waitFor();
      assert.match(await ping.locator(".live-responses-table").innerText(), /pong/);

      assert.deepEqual(w.errors, []);
      assert.deepEqual(w.foreign(), []);
      assert.ok(w.requests.some((u) => u === `${origin}/openapi.json`));
      await w.context.close();
    },
  );

  it("follows a dark system theme", opts, async () => {
    const w = await openPage(browser, new URL(server.url).origin, { colorScheme: "dark" });
    await w.page.goto(`${server.url}/docs`);
    await w.page.locator(".opblock").first().waitFor();
    assert.equal(await w.page.evaluate(() => document.documentElement.classList.contains("dark-mode")), true);
    assert.deepEqual(w.errors, []);
    await w.context.close();
  });
});
