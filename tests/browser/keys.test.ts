// The playground's gateway-keys card in headless Chromium, against real server processes (server-side tokens with
// ADMIN_KEY) wired to the simulator: list, create (the secret shown once, and working), change, revoke, errors.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Browser, Locator, Page } from "playwright-core";
import { browserSkip, launchBrowser, openPage } from "../support/browser.ts";
import { type RunningServer, startServer } from "../support/server.ts";
import { eventually, type RunningSim, startSim } from "../support/sim.ts";

const skip = browserSkip();
const opts = { skip, timeout: 45_000 };
const ADMIN = "key-admin-browser-keys-0001";
const ENV_KEY = "gk-env-browser-keys";
// The page's time zone: a datetime-local field holds a time of this zone (UTC+8, no daylight saving).
const ZONE = "Asia/Shanghai";

/** A chat completion with `key` as the bearer, from the test (not the page). */
async function chat(server: RunningServer, key: string) {
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: "emohaa", messages: [{ role: "user", content: "hello" }] }),
  });
  return { status: res.status, body: await res.json() };
}

/** The admin API's answer, from the test, to check what the page sent. */
async function admin(server: RunningServer, method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.url}/admin/${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

describe("playground gateway keys in Chromium", () => {
  let browser: Browser;
  let sim: RunningSim;
  let server: RunningServer;
  let withEnvKey: RunningServer;

  before(async () => {
    if (skip) return;
    sim = await startSim();
    const env = {
      EMOHAA_BASE_URL: sim.baseUrl,
      EMOHAA_TOKENS: "live-browser-keys-1",
      ADMIN_KEY: ADMIN,
      JOURNAL: "off",
    };
    [server, withEnvKey] = await Promise.all([startServer(env), startServer({ ...env, API_KEYS: ENV_KEY })]);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await Promise.all([server?.kill(), withEnvKey?.kill()]);
    await sim?.stop();
  });

  /** The playground with its keys card open and listed with the admin key. */
  async function keysCard(at: RunningServer) {
    const w = await openPage(browser, new URL(at.url).origin, {
      timezoneId: ZONE,
      permissions: ["clipboard-read", "clipboard-write"],
    });
    await w.page.goto(`${at.url}/`);
    await w.page.locator(".keys-card summary").click();
    const card = w.page.locator(".keys-card");
    await card.getByLabel("ADMIN_KEY", { exact: true }).fill(ADMIN);
    await card.getByRole("button", { name: "Show keys" }).click();
    await card.locator("[data-persistence]").waitFor();
    return { ...w, card };
  }

  /** The text of a key's row, or null while the row is absent. */
  const rowText = async (page: Page, name: string) => {
    const row = page.locator(`.keys-list li[data-name="${name}"]`);
    return (await row.count()) ? (await row.textContent())! : null;
  };

  /** Refreshes the list until the key's row shows one request (usage reaches the store within about a second). */
  const usedOnce = (page: Page, card: Locator, name: string) =>
    eventually(
      async () => {
        await card.getByRole("button", { name: "Refresh" }).click();
        await card.locator("[data-persistence]").waitFor();
        return /requests 1 /.test((await rowText(page, name)) ?? "");
      },
      10_000,
      `${name}'s use in the list`,
      300,
    );

  it("creates a key whose secret shows once and works, shows its usage, changes and revokes it", opts, async () => {
    const { page, card, context, errors } = await keysCard(server);
    assert.equal(await card.locator(".keys-none").count(), 1, "no key yet");
    assert.equal(await card.locator("[data-persistence]").getAttribute("data-persistence"), "memory");
    assert.match((await card.locator("[data-persistence]").textContent())!, /lost when it restarts.*KEYS_FILE/);
    // The server tokens card shares the admin key typed here.
    await page.locator(".admin-card summary").click();
    assert.equal(await page.locator("#admin-key").inputValue(), ADMIN);

    // Create, with limits and an expiry in 3 days, 09:30 in the page's zone (01:30 UTC).
    const name = `alice-${crypto.randomUUID().slice(0, 6)}`;
    const day = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10);
    const create = card.locator(".keys-create");
    await create.getByLabel("Name", { exact: true }).fill(name);
    await create.getByLabel("Requests per minute").fill("5");
    await create.getByLabel("Requests at once").fill("2");
    await create.getByLabel("Tokens per day").fill("100000");
    await create.getByLabel("Expires at").fill(`${day}T09:30`);
    await create.getByRole("button", { name: "Create key" }).click();
    const secretBox = card.locator(".keys-secret");
    await secretBox.waitFor();
    const secret = (await secretBox.locator("code").textContent())!;
    assert.match(secret, /^sk-emohaa-\S{20,}$/);
    assert.match((await secretBox.textContent())!, /shown this once only/);
    assert.equal(await create.getByLabel("Name", { exact: true }).inputValue(), "", "the form is emptied");

    // Copy: to the clipboard; where there is none, the secret is selected for a copy by hand.
    await secretBox.getByRole("button", { name: "Copy" }).click();
    await secretBox.getByText("Copied to the clipboard.").waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
    await page.evaluate(() => Object.defineProperty(navigator, "clipboard", { value: undefined, configurable: true }));
    await secretBox.getByRole("button", { name: "Copy" }).click();
    await secretBox.getByText(/Cannot copy here/).waitFor();
    assert.equal(await page.evaluate(() => getSelection()?.toString()), secret);

    // What the page sent: the limits, and the expiry in UTC.
    const listed = (await admin(server, "GET", "keys")).body.keys.find((k: { name: string }) => k.name === name);
    assert.deepEqual(
      { rpm: listed.rpm, concurrency: listed.concurrency, tokensPerDay: listed.tokensPerDay, at: listed.expiresAt },
      { rpm: 5, concurrency: 2, tokensPerDay: 100_000, at: `${day}T01:30:00.000Z` },
    );
    assert.match((await rowText(page, name))!, /Per minute: 5 · at once: 2 · tokens a day: 100,000/);
    assert.match((await rowText(page, name))!, /expires in [23] days/);
    assert.match((await rowText(page, name))!, /requests 0 .*not used yet/);

    // The secret works; its use shows after a refresh (usage reaches the store within about a second).
    const answer = await chat(server, secret);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const { prompt_tokens, completion_tokens } = answer.body.usage;
    await usedOnce(page, card, name);
    const row = page.locator(`.keys-list li[data-name="${name}"]`);
    assert.match(
      (await row.locator(".keys-usage").textContent())!,
      new RegExp(`prompt tokens ${prompt_tokens} · completion tokens ${completion_tokens} · last used `),
    );
    // A refresh ends the showing of the secret: it is nowhere in the page any more.
    assert.equal(await secretBox.count(), 0);
    assert.ok(!(await page.content()).includes(secret), "the secret is gone from the page");

    // Change: rpm to 20, the daily tokens to no limit (an emptied field); the rest stays.
    await row.getByRole("button", { name: "Change limits" }).click();
    const edit = row.locator(".keys-edit");
    assert.equal(await edit.getByLabel("Requests per minute").inputValue(), "5");
    assert.equal(await edit.getByLabel("Expires at").inputValue(), `${day}T09:30`);
    await edit.getByLabel("Requests per minute").fill("20");
    await edit.getByLabel("Tokens per day").fill("");
    await edit.getByRole("button", { name: "Save changes" }).click();
    await edit.waitFor({ state: "detached" });
    assert.match((await rowText(page, name))!, /Per minute: 20 · at once: 2 · tokens a day: no limit/);
    const changed = (await admin(server, "GET", "keys")).body.keys.find((k: { name: string }) => k.name === name);
    assert.deepEqual(
      { rpm: changed.rpm, concurrency: changed.concurrency, tokensPerDay: changed.tokensPerDay, at: changed.expiresAt },
      { rpm: 20, concurrency: 2, tokensPerDay: null, at: `${day}T01:30:00.000Z` },
    );

    // Revoke: asked inside the page first; Cancel keeps the key.
    await row.getByRole("button", { name: "Revoke" }).click();
    assert.match((await row.locator(".keys-confirm").textContent())!, new RegExp(`Revoke ${name}\\?`));
    await row.getByRole("button", { name: "Cancel" }).click();
    assert.equal(await row.locator(".keys-confirm").count(), 0);
    assert.equal((await chat(server, secret)).status, 200, "still valid after Cancel");
    await row.getByRole("button", { name: "Revoke" }).click();
    await row.getByRole("button", { name: "Yes, revoke" }).click();
    await row.waitFor({ state: "detached" });
    await card.locator(".keys-none").waitFor();
    assert.equal((await chat(server, secret)).status, 401);

    // A bad input: the server's error, as the server words it.
    const refused = await admin(server, "POST", "keys", { name: "bad name" });
    assert.equal(refused.status, 400);
    await create.getByLabel("Name", { exact: true }).fill("bad name");
    await create.getByRole("button", { name: "Create key" }).click();
    const error = card.locator(".pool-error");
    await error.waitFor();
    assert.equal(await error.locator(".error-message").textContent(), refused.body.error.message);
    assert.match((await error.textContent())!, /HTTP 400/);
    assert.equal(await card.locator(".keys-secret").count(), 0);

    // Only the responses the test asked for failed (the pool without a bearer, the refused name).
    assert.deepEqual(errors.filter((e) => !/status of (400|401)/.test(e)), []);
    assert.ok(!server.output().includes(secret), "the server never prints a secret");
    server.assertPrivate();
    await context.close();
  });

  it("lists a key of API_KEYS with its use, but offers no change or revocation of it", opts, async () => {
    assert.equal((await chat(withEnvKey, ENV_KEY)).status, 200);
    const { page, card, context } = await keysCard(withEnvKey);
    const row = card.locator('.keys-list li[data-source="env"]');
    await row.waitFor();
    const name = (await row.getAttribute("data-name"))!;
    assert.match((await row.textContent())!, /API_KEYS.*From the environment/);
    assert.equal(await row.getByRole("button").count(), 0);
    await usedOnce(page, card, name);
    await context.close();
  });
});
