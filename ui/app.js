// The playground page: tokens, the account pool, system message, a streamed multi-turn chat, "copy as curl", and the
// admin cards (Preact + htm). Each card is a module of its own; this one lays them out and holds what they share.
import { render } from "preact";
import { useState } from "preact/hooks";
import { parseTokens } from "./client.js";
import { Chat } from "./chat.js";
import { Curl } from "./curl.js";
import { html, lang, t } from "./page.js";
import { Pool, usePool } from "./pool.js";
import { loadTokens, saveTokens, Tokens } from "./tokens.js";
import { Admin } from "./admin.js";
import { Keys } from "./keys.js";
import { sendWouldFail } from "./expiry.js";
import { useNow } from "./expiry-view.js";

document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
document.title = t("title");

function App() {
  const [text, setTextState] = useState(loadTokens);
  const [system, setSystem] = useState("");
  const [last, setLast] = useState(null);
  // The admin key, shared by the admin cards: in memory only, never stored.
  const [adminKey, setAdminKey] = useState("");
  const tokens = parseTokens(text);
  const { pool, refresh } = usePool(tokens);
  const now = useNow();
  const serverRows = pool.result?.kind === "ok" && pool.result.status.mode === "server"
    ? pool.result.status.tokens
    : null;
  const warning = sendWouldFail({ tokens, serverRows, now }) ? t("sendWouldFail") : "";

  function setText(v) {
    setTextState(v);
    saveTokens(v);
  }

  return html`
    <div class="page">
      <header class="top">
        <div class="brand">
          <img src="favicon.svg" alt="" width="28" height="28" />
          <h1>${t("title")}</h1>
          <span class="subtitle">${t("subtitle")}</span>
        </div>
        <nav aria-label="Links">
          <a href="docs">${t("docs")}</a>
          <a href="openapi.json" class="secondary">${t("openapi")}</a>
        </nav>
      </header>
      <main class="layout">
        <aside class="side" aria-label=${t("settings")}>
          <${Tokens} text=${text} setText=${setText} onChecked=${refresh} />
          <${Pool} pool=${pool} refresh=${refresh} />
          <section class="card system-card">
            <h2 id="system-label"><label for="system">${t("system")}</label> <span class="optional">${t(
              "optional",
            )}</span></h2>
            <textarea id="system" rows="3" placeholder=${t("systemPlaceholder")} value=${system} onInput=${(e) =>
              setSystem(e.currentTarget.value)}></textarea>
          </section>
          <${Curl} last=${last} />
          <${Admin} onChanged=${refresh} now=${now} adminKey=${adminKey} setAdminKey=${setAdminKey} />
          <${Keys} adminKey=${adminKey} setAdminKey=${setAdminKey} now=${now} />
        </aside>
        <${Chat} tokens=${tokens} system=${system} setLast=${setLast} onReplyEnd=${refresh} warning=${warning} />
      </main>
    </div>
  `;
}

render(html`<${App} />`, document.getElementById("app"));
