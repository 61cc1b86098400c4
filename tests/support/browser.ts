// Test support: headless Chromium (playwright-core) for the browser tests, and watching what a page does.
import { existsSync } from "node:fs";
import type { Browser, BrowserContext, BrowserContextOptions, Page } from "playwright-core";

/** The Chromium the tests drive: Debian's package (`apt-get install chromium`), or `CHROMIUM_PATH`. */
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/**
 * Why the browser tests cannot run here, or false. Only a developer machine without Chromium skips them:
 * in CI (`CI` set) they run, and a missing browser fails them.
 */
export function browserSkip(): string | false {
  if (existsSync(CHROMIUM) || process.env.CI) return false;
  return `Chromium is not installed at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;
}

/** Launches headless Chromium with nothing running in the background that could reach the network. */
export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
}

export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  /** Console errors and uncaught exceptions. */
  errors: string[];
  /** Every URL the page requested. */
  requests: string[];
  /** Requests that left `origin` (data: and blob: URLs are not requests over the network). */
  foreign(): string[];
}

/** A new page in its own context (fresh localStorage), recording errors and requests. */
export async function openPage(
  browser: Browser,
  origin: string,
  options: BrowserContextOptions = {},
): Promise<WatchedPage> {
  const context = await browser.newContext({ locale: "en-US", ...options });
  const page = await context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(`uncaught: ${e.message}`));
  page.on("request", (r) => void requests.push(r.url()));
  return {
    page,
    context,
    errors,
    requests,
    foreign: () => requests.filter((u) => !/^(data|blob):/.test(u) && new URL(u).origin !== origin),
  };
}
