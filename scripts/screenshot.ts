// `bun run scripts/screenshot.ts`: screenshots of the playground (against the simulator) into docs/, for the README.
// Needs Debian's chromium (the browser tests' too) and a CJK font, fonts-noto-cjk: without one the Chinese text of the
// conversation renders as boxes. As root with apt-get, the script installs what is missing; elsewhere it says what to.
import { spawnSync } from "node:child_process";
import { start } from "../lib/start.ts";
import { consoleWriter, runtimeParts } from "../runtime/parts.ts";
import { serve } from "../runtime/serve.ts";
import { createSimulator } from "../sim/simulator.ts";
import { launchBrowser } from "../tests/support/browser.ts";

/** Whether fontconfig knows a font for Chinese; installs Debian's fonts-noto-cjk when it can. */
function ensureCjkFont(): boolean {
  const has = () => spawnSync("fc-list", [":lang=zh"], { encoding: "utf8" }).stdout?.trim().length > 0;
  if (has()) return true;
  if (process.getuid?.() === 0 && spawnSync("sh", ["-c", "command -v apt-get"]).status === 0) {
    console.log("no CJK font: installing Debian's fonts-noto-cjk");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "fonts-noto-cjk"], {
      env,
      stdio: "inherit",
    });
  }
  return has();
}
if (!ensureCjkFont()) {
  console.error("No CJK font: install Debian's fonts-noto-cjk (apt-get install fonts-noto-cjk) and run this again.");
  process.exit(1);
}

const sim = createSimulator();
const upstream = await serve(sim.fetch, { port: 0, hostname: "127.0.0.1" });
const { app } = await start({ EMOHAA_BASE_URL: `http://127.0.0.1:${upstream.port}/echo-prod`, LOG_LEVEL: "error" }, {
  ...runtimeParts(),
  writeLog: consoleWriter,
});
const gateway = await serve(app.fetch, { port: 0, hostname: "127.0.0.1" });
const url = `http://127.0.0.1:${gateway.port}/`;
const docs = new URL("../docs/", import.meta.url).pathname;

const browser = await launchBrowser();
const shots = [
  {
    file: "playground.png",
    options: { viewport: { width: 1280, height: 1000 }, colorScheme: "light" as const, locale: "en-US" },
  },
  {
    file: "playground-phone.png",
    options: { viewport: { width: 390, height: 844 }, colorScheme: "dark" as const, locale: "zh-CN", isMobile: true },
  },
];
try {
  for (const { file, options } of shots) {
    const context = await browser.newContext(options);
    const page = await context.newPage();
    await page.goto(url);
    await page.locator("#tokens").fill("live-demo-token-0001\nexpired-demo-token-0002");
    await page.locator(".tokens-card button").first().click();
    await page.locator('.token-list li[data-state="expired"]').waitFor();
    const system = options.locale === "zh-CN" ? "请简短、温和地回答。" : "Answer briefly and warmly.";
    await page.locator("#tokens").fill("live-demo-token-0001");
    // The simulator's reply is chosen by a directive in the prompt; the system message carries it out of sight.
    const say = async (text: string, reply: string, n: number) => {
      await page.locator("#system").fill(`${system} [[reply:${reply}]]`);
      await page.locator("#prompt").fill(text);
      await page.locator("#prompt").press("Enter");
      await page.locator('.msg.assistant[data-state="done"]').nth(n).waitFor();
    };
    await say("你好", "你好啊！我是Emohaa，想和我聊点什么吗？😊", 0);
    await say(
      "最近总是睡不好，白天也没精神。",
      "听起来你最近真的很辛苦。睡不好的时候，脑子里常常在想些什么呢？我在这里听你说。",
      1,
    );
    await page.locator("#system").fill(system);
    await page.evaluate(() => {
      (document.activeElement as HTMLElement | null)?.blur();
      globalThis.scrollTo(0, 0);
    });
    await page.screenshot({ path: docs + file });
    console.log(`wrote docs/${file}`);
    await context.close();
  }
} finally {
  await browser.close();
  await gateway.stop(true);
  await upstream.stop(true);
}
