// The playground in headless Chromium against the real server process wired to the simulator.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Browser, Request } from "playwright-core";
import { browserSkip, launchBrowser, openPage } from "../support/browser.ts";
import { type RunningServer, startServer } from "../support/server.ts";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";

const skip = browserSkip();
// Generous: a slow CI machine starts Chromium and the server process in a few seconds.
const opts = { skip, timeout: 30_000 };

describe("playground in Chromium", () => {
  let browser: Browser;
  let sim: RunningSim;
  let server: RunningServer;
  let origin: string;

  before(async () => {
    if (skip) return;
    sim = await startSim();
    server = await startServer({ EMOHAA_BASE_URL: sim.baseUrl, LOG_LEVEL: "error" });
    origin = new URL(server.url).origin;
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.kill();
    await sim?.stop();
  });

  /** Opens the playground with `tokens` already pasted. */
  async function playground(tokens?: string, options = {}) {
    const w = await openPage(browser, origin, options);
    await w.page.goto(`${server.url}/`);
    await w.page.locator("#tokens").waitFor();
    if (tokens !== undefined) await w.page.getByLabel("Tokens", { exact: true }).fill(tokens);
    return w;
  }

  /** The label `/v1/tokens/status` shows for a token: the end of its SHA-256. */
  const label = (token: string) => `…${createHash("sha256").update(token).digest("hex").slice(-4)}`;

  const chatBodies = (requests: Request[]) =>
    requests.filter((r) => r.url().endsWith("/v1/chat/completions")).map((r) => JSON.parse(r.postData() ?? "null"));

  it("loads with no console errors, labelled controls, and only same-origin requests", opts, async () => {
    const w = await playground();
    const { page } = w;
    assert.equal(await page.title(), "Emohaa Playground");
    assert.equal(await page.locator("html").getAttribute("lang"), "en");
    for (const label of ["Tokens", "System message", "Message"]) {
      assert.equal(await page.getByLabel(label, { exact: true }).count(), 1, label);
    }
    assert.equal(await page.getByRole("link", { name: "API docs" }).getAttribute("href"), "docs");
    assert.match((await page.locator(".tokens-card .hint").first().textContent())!, /localStorage only/);
    await page.waitForLoadState("networkidle");
    assert.deepEqual(w.errors, []);
    assert.deepEqual(w.foreign(), []);
    assert.ok(w.requests.some((u) => u.endsWith("/ui/vendor/preact.mjs")), "Preact comes from this server");
    await w.context.close();
  });

  it("checks a live and an expired token, keeps them in localStorage only, and forgets them", opts, async () => {
    const w = await playground("live-check-token-1\nexpired-check-token-1");
    const { page } = w;
    await page.getByRole("button", { name: "Check" }).click();
    const live = page.locator('.token-list li[data-state="live"]');
    const expired = page.locator('.token-list li[data-state="expired"]');
    await live.waitFor();
    await expired.waitFor();
    assert.equal(await live.textContent(), "live-c…en-1live");
    assert.equal(await expired.textContent(), "expire…en-1expired");

    await page.reload();
    assert.equal(
      await page.getByLabel("Tokens", { exact: true }).inputValue(),
      "live-check-token-1\nexpired-check-token-1",
    );
    await page.getByRole("button", { name: "Forget tokens" }).click();
    assert.equal(await page.getByLabel("Tokens", { exact: true }).inputValue(), "");
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    assert.deepEqual(w.errors, []);
    assert.deepEqual(w.foreign(), []);
    await w.context.close();
  });

  it("shows the account pool after a check: the live token healthy, the expired one cooling", opts, async () => {
    const w = await playground("live-pool-token-1\nexpired-pool-token-1");
    const { page } = w;
    const statusCalls = () => w.requests.filter((u) => u.endsWith("/v1/tokens/status")).length;
    await page.getByRole("button", { name: "Check" }).click();
    await page.locator('.token-list li[data-state="expired"]').waitFor();
    await page.locator('.token-list li[data-state="live"]').waitFor();

    // The check fed the pool: the expired token is cooling down.
    const panel = page.getByRole("region", { name: "Account pool" });
    const rows = panel.getByRole("list", { name: "Tokens in the pool" }).getByRole("listitem");
    await panel.locator('li[data-state="cooling"]').waitFor();
    assert.equal(await rows.count(), 2);
    const healthy = rows.nth(0);
    const cooling = rows.nth(1);
    assert.equal(await healthy.getAttribute("data-state"), "healthy");
    assert.equal(await healthy.locator(".pool-name").textContent(), `live-p…en-1 ${label("live-pool-token-1")}`);
    assert.equal(await healthy.locator(".badge").textContent(), "healthy");
    assert.equal(await healthy.locator(".pool-meta").textContent(), "0 in flight");
    assert.equal(await cooling.locator(".pool-name").textContent(), `expire…en-1 ${label("expired-pool-token-1")}`);
    assert.match((await cooling.locator(".badge").textContent())!, /^cooling until \d\d:\d\d:\d\d$/);
    assert.equal(await cooling.locator(".pool-meta").textContent(), "0 in flight · last error: rejected");
    const summary = (await panel.locator(".pool-summary").textContent())!;
    assert.match(summary, /Mode: your tokens/);
    assert.match(summary, /Queue: 0 waiting/);
    assert.match(summary, /updated \d\d:\d\d:\d\d/);
    assert.equal(await panel.locator(".pool-note").count(), 0, "no gateway-key note in client mode");

    // "Refresh" asks again, with the pasted tokens as the bearer.
    const before = statusCalls();
    const [request] = await Promise.all([
      page.waitForRequest((r) => r.url().endsWith("/v1/tokens/status")),
      panel.getByRole("button", { name: "Refresh the account pool" }).click(),
    ]);
    assert.equal(await request.headerValue("authorization"), "Bearer live-pool-token-1,expired-pool-token-1");
    assert.ok(statusCalls() > before);
    await page.waitForFunction(() => document.querySelector(".pool-card")?.getAttribute("aria-busy") === "false");

    // A reply ends: the pool is read again. Forgetting the tokens hides the panel.
    await page.getByLabel("Tokens", { exact: true }).fill("live-pool-token-1");
    await page.getByLabel("Message", { exact: true }).fill("[[pieces:2]] hi");
    const afterReply = page.waitForRequest((r) =>
      r.url().endsWith("/v1/tokens/status") && r.headers().authorization === "Bearer live-pool-token-1"
    );
    await page.getByLabel("Message", { exact: true }).press("Enter");
    await page.locator('.msg.assistant[data-state="done"]').waitFor();
    await afterReply;
    await eventually(async () => (await rows.count()) === 1, 5000, "the pool to list only the remaining token");
    await page.getByRole("button", { name: "Forget tokens" }).click();
    await panel.waitFor({ state: "detached" });
    assert.deepEqual(w.errors, []);
    assert.deepEqual(w.foreign(), []);
    await w.context.close();
  });

  it(
    "hides the pool panel for a server without the endpoint, and shows the server's message on an error",
    opts,
    async () => {
      const w = await openPage(browser, origin);
      const { page } = w;
      let answer = {
        status: 404,
        body: JSON.stringify({
          error: { message: "Not found", type: "not_found_error", param: null, code: "not_found" },
        }),
      };
      await page.route(
        "**/v1/tokens/status",
        (route) => route.fulfill({ status: answer.status, contentType: "application/json", body: answer.body }),
      );
      await page.goto(`${server.url}/`);
      const asked = page.waitForResponse((r) => r.url().endsWith("/v1/tokens/status"));
      await page.getByLabel("Tokens", { exact: true }).fill("live-old-server-1");
      await asked;
      await page.waitForTimeout(200);
      assert.equal(await page.locator(".pool-card").count(), 0, "no panel after a 404");
      assert.equal(await page.getByRole("region", { name: "Account pool" }).count(), 0);

      answer = {
        status: 503,
        body: JSON.stringify({
          error: {
            message: "The server has no Emohaa tokens configured",
            type: "server_error",
            param: null,
            code: "no_tokens",
          },
        }),
      };
      await page.reload();
      const panel = page.getByRole("region", { name: "Account pool" });
      const alert = panel.getByRole("alert");
      await alert.waitFor();
      assert.equal(await alert.locator(".error-title").textContent(), "Cannot show the pool");
      assert.equal(await alert.locator(".error-message").textContent(), "The server has no Emohaa tokens configured");
      assert.equal(await alert.locator(".meta").textContent(), "HTTP 503 · no_tokens");
      assert.deepEqual(w.errors.filter((e) => !/status of (404|503)/.test(e)), []);
      await w.context.close();
    },
  );

  it(
    "in server-side mode, explains the gateway key, shows the pool's tokens, and the error for a wrong key",
    opts,
    async () => {
      const tokens = ["live-pool-srv-1", "live-pool-srv-2"];
      const held = await startServer({
        EMOHAA_BASE_URL: sim.baseUrl,
        LOG_LEVEL: "error",
        EMOHAA_TOKENS: tokens.join(","),
        API_KEYS: "gw-pool-key",
        JOURNAL: "off",
      });
      const w = await openPage(browser, new URL(held.url).origin);
      const { page } = w;
      try {
        await page.goto(`${held.url}/`);
        await page.getByLabel("Tokens", { exact: true }).fill("wrong-key");
        const panel = page.getByRole("region", { name: "Account pool" });
        await panel.getByRole("alert").waitFor();
        assert.match(
          (await panel.locator(".error-message").textContent())!,
          /^Invalid API key: this server holds the Emohaa tokens/,
        );
        assert.match((await panel.locator(".meta").textContent())!, /HTTP 401 · invalid_api_key/);

        await page.getByLabel("Tokens", { exact: true }).fill("gw-pool-key");
        await panel.locator(".pool-list").waitFor();
        assert.equal(await panel.getByRole("alert").count(), 0);
        assert.match((await panel.locator(".pool-summary").textContent())!, /Mode: accounts held by this server/);
        assert.equal(
          await panel.locator(".pool-note").textContent(),
          "This server holds the accounts: the value above is its gateway key, not an Emohaa token.",
        );
        const rows = panel.getByRole("listitem");
        assert.deepEqual(await rows.locator(".pool-name").allTextContents(), tokens.map(label));
        assert.deepEqual(await rows.locator(".badge").allTextContents(), ["healthy", "healthy"]);
        assert.ok(!(await panel.textContent())!.includes("gw-pool"), "the key is not shown as a token");
        assert.deepEqual(w.errors.filter((e) => !/status of 401/.test(e)), []);
      } finally {
        await w.context.close();
        await held.kill();
      }
    },
  );

  it(
    "in server-side mode, checks with the gateway key as the bearer, and tells a rate limit from a failed check",
    opts,
    async () => {
      const held = await startServer({
        EMOHAA_BASE_URL: sim.baseUrl,
        LOG_LEVEL: "error",
        EMOHAA_TOKENS: "live-check-srv-1",
        API_KEYS: "gw-check-key",
        JOURNAL: "off",
        TOKEN_CHECK_RATE: "1",
        TOKEN_CHECK_BURST: "1",
      });
      const w = await openPage(browser, new URL(held.url).origin);
      const { page } = w;
      try {
        await page.goto(`${held.url}/`);
        await page.getByLabel("Tokens", { exact: true }).fill("gw-check-key");
        const item = page.locator(".token-list li");
        const check = async () => {
          const [response] = await Promise.all([
            page.waitForResponse((r) => r.url().endsWith("/token/check")),
            page.getByRole("button", { name: "Check" }).click(),
          ]);
          await page.locator('.token-list li:not([data-state="checking"])').waitFor();
          assert.equal(await response.request().headerValue("authorization"), "Bearer gw-check-key");
          return response;
        };

        // The key opens the check: the server answers, and the page shows its answer, not "check failed".
        assert.equal((await check()).status(), 200);
        assert.notEqual(await item.getAttribute("data-state"), "error");
        assert.notEqual(await item.locator(".badge").textContent(), "check failed");

        // The second check within the minute is over the budget of one: the page says so, and when to retry.
        const limited = await check();
        assert.equal(limited.status(), 429);
        const wait = Number(await limited.headerValue("retry-after"));
        assert.ok(wait > 0);
        await page.locator('.token-list li[data-state="limited"]').waitFor();
        assert.equal(await item.locator(".badge").textContent(), `too many checks, retry in ${wait} s`);
        assert.deepEqual(w.errors.filter((e) => !/status of 429/.test(e)), []);
        assert.deepEqual(w.foreign(), []);
      } finally {
        await w.context.close();
        await held.kill();
      }
    },
  );

  it(
    "streams a reply that grows before it completes, then shows timings and usage, over several turns",
    opts,
    async () => {
      const w = await playground("live-stream-1");
      const { page } = w;
      const sent: Request[] = [];
      page.on("request", (r) => void sent.push(r));
      await page.getByLabel("System message", { exact: true }).fill("Be brief.");
      const box = page.getByLabel("Message", { exact: true });

      // Shift+Enter is a new line, not a send.
      await box.click();
      await page.keyboard.type("[[pieces:6]][[delay:150]]");
      await page.keyboard.press("Shift+Enter");
      await page.keyboard.type("hello");
      assert.equal(await box.inputValue(), "[[pieces:6]][[delay:150]]\nhello");
      assert.equal(chatBodies(sent).length, 0);

      await page.keyboard.press("Enter");
      const reply = page.locator(".msg.assistant").last();
      const partial = await page.waitForFunction(() => {
        const el = document.querySelector('.msg.assistant[data-state="streaming"] .bubble');
        return el && !el.querySelector(".waiting") && el.textContent!.length > 0 ? el.textContent : null;
      });
      const partialText = (await partial.jsonValue()) as string;
      await page.locator('.msg.assistant[data-state="done"]').waitFor();
      const finalText = (await reply.locator(".bubble").textContent())!;
      assert.equal(finalText, "片0片1片2片3片4片5");
      assert.ok(
        partialText.length < finalText.length && finalText.startsWith(partialText),
        `saw "${partialText}" before "${finalText}"`,
      );
      const meta = (await reply.locator(".meta").textContent())!;
      assert.match(meta, /first token \d+ ms/);
      assert.match(meta, /total [\d.]+ m?s/);
      assert.match(meta, /\d+ tokens \(\d+ in \+ \d+ out, estimated\)/);

      const [first] = chatBodies(sent);
      assert.equal(first.stream, true);
      assert.deepEqual(first.stream_options, { include_usage: true });
      assert.deepEqual(first.messages[0], { role: "system", content: "Be brief." });

      // The second turn carries the first one.
      await box.fill("[[pieces:2]] again");
      await page.getByRole("button", { name: "Send" }).click();
      await page.locator('.msg.assistant[data-state="done"]').nth(1).waitFor();
      const second = chatBodies(sent)[1];
      assert.deepEqual(
        second.messages.map((m: any) => m.role),
        ["system", "user", "assistant", "user"],
      );
      assert.equal(second.messages[2].content, finalText);

      // "Copy as curl" copies the last request, with the tokens left out.
      await w.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
      await page.getByRole("button", { name: "Copy as curl" }).click();
      await page.getByText("Copied.").waitFor();
      const curl = await page.evaluate(() => navigator.clipboard.readText());
      assert.match(curl, new RegExp(`^curl -N '${origin}/v1/chat/completions'`));
      assert.match(curl, /\$EMOHAA_TOKENS/);
      assert.match(curl, /"include_usage":true/);
      assert.doesNotMatch(curl, /live-stream-1/);

      await eventually(() => sim.sim.state().open === 0, 3000, "the conversations to be deleted");
      assert.deepEqual(w.errors, []);
      assert.deepEqual(w.foreign(), []);
      await w.context.close();
    },
  );

  it("stops a stream mid-way, and the server deletes the upstream conversation", opts, async () => {
    const w = await playground("live-stop-1");
    const { page } = w;
    const before = sim.sim.state();
    await page.getByLabel("Message", { exact: true }).fill("[[pieces:40]][[delay:150]] tell me a long story");
    await page.getByLabel("Message", { exact: true }).press("Enter");
    await page.waitForFunction(() =>
      (document.querySelector('.msg.assistant[data-state="streaming"] .bubble:not(:has(.waiting))')?.textContent ?? "")
        .length > 0
    );
    await page.getByRole("button", { name: "Stop" }).click();
    const reply = page.locator('.msg.assistant[data-state="stopped"]');
    await reply.waitFor();
    assert.match((await reply.locator(".meta").textContent())!, /^Stopped/);
    assert.ok((await reply.locator(".bubble").textContent())!.length < 80, "the reply stopped before its end");
    assert.equal(await page.getByRole("button", { name: "Send" }).count(), 1, "Send is back");
    await eventually(
      () => {
        const s = sim.sim.state();
        return s.aborted > before.aborted && s.open === 0 && s.deleted > before.deleted;
      },
      5000,
      "the simulator to see the abort and the deletion",
    );
    assert.deepEqual(w.errors, []);
    await w.context.close();
  });

  it("shows the server's message for an expired token, and puts the question back", opts, async () => {
    const w = await playground("expired-chat-1");
    const { page } = w;
    await page.getByLabel("Message", { exact: true }).fill("are you there?");
    await page.getByLabel("Message", { exact: true }).press("Enter");
    const alert = page.getByRole("alert");
    await alert.waitFor();
    assert.equal(await alert.locator(".error-title").textContent(), "Token expired or invalid");
    assert.match((await alert.locator(".error-message").textContent())!, /Emohaa rejected the token/);
    assert.match((await alert.locator(".meta").textContent())!, /HTTP 401 · invalid_token/);
    assert.equal(await page.getByLabel("Message", { exact: true }).inputValue(), "are you there?");
    // The only console line is Chromium's own note of the 401 response.
    assert.deepEqual(w.errors.filter((e) => !/status of 401/.test(e)), []);
    await w.context.close();
  });

  it("speaks Chinese to a Chinese browser", opts, async () => {
    const w = await playground(undefined, { locale: "zh-CN" });
    const { page } = w;
    assert.equal(await page.locator("h1").textContent(), "Emohaa 调试台");
    assert.equal(await page.locator("html").getAttribute("lang"), "zh-CN");
    assert.equal(await page.getByLabel("令牌", { exact: true }).count(), 1);
    assert.deepEqual(w.errors, []);
    await w.context.close();
  });
});
