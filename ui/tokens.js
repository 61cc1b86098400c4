// The tokens card: the pasted tokens (or gateway key), kept in this browser only, their check, and "forget".
import { useState } from "preact/hooks";
import { checkToken, maskToken, parseTokens, STORAGE_KEY } from "./client.js";
import { TokenExpiries } from "./expiry-view.js";
import { base, html, t } from "./page.js";

/** The tokens kept from an earlier visit ("" when none, or when storage is off). */
export function loadTokens() {
  try {
    return localStorage.getItem(STORAGE_KEY) ?? "";
  } catch {
    return "";
  }
}

/** Keeps the tokens for the next visit, or drops them when the field is empty. */
export function saveTokens(text) {
  try {
    if (text.trim()) localStorage.setItem(STORAGE_KEY, text);
    else localStorage.removeItem(STORAGE_KEY);
  } catch {
    // Private mode without storage: tokens live for this page only.
  }
}

/** A check's result in words: "live", "too many checks, retry in 42 s", ... */
function checkLabel(check) {
  if (check.state === "limited") {
    return check.retryAfter ? t("checkLimited", { s: check.retryAfter }) : t("checkLimitedLater");
  }
  return t({ live: "live", expired: "expired", error: "checkFailed", checking: "checking" }[check.state]);
}

/** The card; `onChecked` runs after each check, which feeds the pool's health state. */
export function Tokens({ text, setText, onChecked }) {
  // By token, in a Map: a pasted "constructor" or "__proto__" must not find Object's own properties.
  const [checks, setChecks] = useState(() => new Map());
  const [note, setNote] = useState("");
  const tokens = parseTokens(text);
  const checking = [...checks.values()].some((c) => c.state === "checking");

  async function check() {
    setNote("");
    setChecks(new Map(tokens.map((tk) => [tk, { state: "checking" }])));
    // The same bearer as the chat: a server that holds the tokens wants its gateway key for a check too.
    await Promise.all(
      tokens.map(async (tk) => {
        const result = await checkToken(tk, { base, bearer: tokens });
        setChecks((c) => new Map(c).set(tk, result));
      }),
    );
    // A check feeds the pool's health state (an expired token cools down): show it.
    onChecked();
  }

  function forget() {
    try {
      localStorage.removeItem(STORAGE_KEY);
    } catch {
      // Storage disabled: nothing was kept.
    }
    setText("");
    setChecks(new Map());
    setNote(t("forgotten"));
  }

  // The pasted tokens that have a result, in the order pasted.
  const shown = tokens.filter((tk) => checks.has(tk)).map((tk) => [tk, checks.get(tk)]);
  return html`<section class="card tokens-card">
    <h2 id="tokens-label"><label for="tokens">${t("tokens")}</label></h2>
    <textarea
      id="tokens"
      rows="3"
      spellcheck="false"
      autocomplete="off"
      autocapitalize="off"
      placeholder=${t("tokensPlaceholder")}
      aria-describedby="tokens-privacy"
      value=${text}
      onInput=${(e) => {
    setText(e.currentTarget.value);
    setNote("");
  }}
    ></textarea>
    <p id="tokens-privacy" class="hint">${t("tokensPrivacy")}</p>
    <${TokenExpiries} tokens=${tokens} />
    <div class="row">
      <button type="button" onClick=${check} disabled=${!tokens.length || checking}>${
    checking ? t("checking") : t("check")
  }</button>
      <button type="button" class="ghost" onClick=${forget} disabled=${!text}>${t("forget")}</button>
    </div>
    ${note && html`<p class="hint" role="status">${note}</p>`}
    ${
    shown.length > 0 &&
    html`<ul class="token-list" aria-live="polite">
      ${
      shown.map(
        ([tk, c]) =>
          html`<li key=${tk} data-state=${c.state}><code>${maskToken(tk)}</code><span class=${`badge ${c.state}`}>${
            checkLabel(c)
          }</span></li>`,
      )
    }
    </ul>`
  }
  </section>`;
}
