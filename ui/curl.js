// The "last request" card: the last chat request as a curl command, tokens left out, to copy.
import { useEffect, useState } from "preact/hooks";
import { curlCommand } from "./client.js";
import { html, t } from "./page.js";

/** The card for `last` ({ url, body } of the last chat request, or null before the first). */
export function Curl({ last }) {
  const [note, setNote] = useState("");
  const command = last ? curlCommand(last.url, last.body) : "";
  useEffect(() => setNote(""), [command]);
  async function copy() {
    try {
      await navigator.clipboard.writeText(command);
      setNote(t("copied"));
    } catch {
      setNote(t("copyFailed"));
    }
  }
  return html`<section class="card curl-card">
    <h2 id="curl-label">${t("lastRequest")}</h2>
    <div class="row">
      <button type="button" onClick=${copy} disabled=${!last}>${t("copyCurl")}</button>
    </div>
    ${note && html`<p class="hint" role="status">${note}</p>`}
    ${
    last
      ? html`
        <details>
          <summary>${t("showCurl")}</summary>
          <pre class="curl" tabindex="0"><code>${command}</code></pre>
        </details>
      `
      : html`<p class="hint">${t("noRequest")}</p>`
  }
  </section>`;
}
