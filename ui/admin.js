// The admin card: the server's own tokens through /admin/tokens (ADMIN_KEY), listed with their end, added,
// replaced and removed; and what every admin card shares (the call, its error). The admin key stays in this tab's
// memory only: never stored, gone on reload.
import { useState } from "preact/hooks";
import { errorFromResponse, parseTokens } from "./client.js";
import { isoExpiry } from "./expiry.js";
import { Expiry } from "./expiry-view.js";
import { base, html, t } from "./page.js";

/**
 * One call to the admin API at `admin/{path}` ("tokens", "keys/alice"): `{ok: true, body}` with the JSON it answers,
 * or `{ok: false, error}` with the server's error (message, status, code), or a network failure in words.
 */
export async function adminCall(method, path, { key, body, fetchFn = fetch } = {}) {
  const headers = { ...(key ? { authorization: `Bearer ${key}` } : {}) };
  if (body) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetchFn(new URL(`admin/${path}`, base), {
      method,
      headers,
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch {
    return { ok: false, error: { message: t("adminUnreachable") } };
  }
  if (!res.ok) return { ok: false, error: await errorFromResponse(res) };
  return { ok: true, body: await res.json() };
}

/** An admin call's error as the admin cards show it: the server's message, its HTTP status and code. */
export function AdminError({ error }) {
  if (!error) return null;
  return html`<div class="pool-error" role="alert"><p class="error-message">${error.message}</p>${
    error.status &&
    html`<p class="meta">${t("status", { status: error.status })}${error.code ? ` · ${error.code}` : ""}</p>`
  }</div>`;
}

/**
 * The card; `onChanged` runs after each change (the pool card shows the new tokens). The admin key (`adminKey`,
 * `setAdminKey`) is the page's: the gateway-keys card uses the same.
 */
export function Admin({ onChanged, now, adminKey: key, setAdminKey: setKey }) {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [adding, setAdding] = useState("");
  const [replacing, setReplacing] = useState(null);
  const [replacement, setReplacement] = useState("");

  async function run(method, path = "", body) {
    setBusy(true);
    const r = await adminCall(method, `tokens${path}`, { key: key.trim(), body });
    setBusy(false);
    if (!r.ok) {
      // A server without server-side tokens has no admin routes.
      setError(r.error.status === 404 && !path ? { message: t("adminAbsent") } : r.error);
      return false;
    }
    setError(null);
    setList(r.body);
    if (method !== "GET") onChanged();
    return true;
  }

  async function add(e) {
    e.preventDefault();
    const tokens = parseTokens(adding);
    if (tokens.length && (await run("POST", "", { tokens }))) setAdding("");
  }

  async function replace(e, label) {
    e.preventDefault();
    const token = replacement.trim();
    if (token && (await run("PUT", `/${encodeURIComponent(label)}`, { token }))) {
      setReplacing(null);
      setReplacement("");
    }
  }

  return html`<details class="card admin-card">
    <summary><h2 id="admin-label">${t("admin")}</h2></summary>
    <p class="hint">${t("adminHint")}</p>
    <form class="row" onSubmit=${(e) => (e.preventDefault(), run("GET"))}>
      <label for="admin-key" class="visually-hidden">${t("adminKey")}</label>
      <input
        id="admin-key"
        type="password"
        autocomplete="off"
        placeholder=${t("adminKey")}
        value=${key}
        onInput=${(e) => setKey(e.currentTarget.value)}
      />
      <button type="submit" disabled=${busy}>${t("adminLoad")}</button>
    </form>
    <${AdminError} error=${error} />
    ${
    list &&
    html`
      <p class="hint" data-persistence=${list.persistence}>${t(`adminKept_${list.persistence}`)}</p>
      <ul class="pool-list admin-list" aria-label=${t("adminTokens")}>
              ${list.tokens.map((row) =>
                html`<li key=${row.label} data-label=${row.label}>
          <span class="pool-name"><code>${row.label}</code> <span class="optional">${row.origin}</span></span>
          <${Expiry} at=${isoExpiry(row.expiresAt)} now=${now} />
          <span class="row">
            <button type="button" class="ghost small" disabled=${busy} onClick=${() => (
                  setReplacing(row.label), setReplacement("")
                )}>${t("adminReplace")}</button>
            <button type="button" class="ghost small" disabled=${busy} onClick=${() =>
                  run("DELETE", `/${encodeURIComponent(row.label)}`)}>${t("adminRemove")}</button>
          </span>
          ${
                  replacing === row.label &&
                  html`
                    <form class="row" onSubmit=${(e) => replace(e, row.label)}>
                      <label class="visually-hidden" for=${`replace-${row.label}`}>${t("adminNewToken")}</label>
                      <input
                        id=${`replace-${row.label}`}
                        type="password"
                        autocomplete="off"
                        placeholder=${t("adminNewToken")}
                        value=${replacement}
                        onInput=${(e) => setReplacement(e.currentTarget.value)}
                      />
                      <button type="submit" disabled=${busy || !replacement.trim()}>${t("adminSave")}</button>
                    </form>
                  `
                }
        </li>`
              )}
            </ul>
      <form onSubmit=${add}>
        <label for="admin-add">${t("adminAdd")}</label>
        <textarea
          id="admin-add"
          rows="2"
          spellcheck="false"
          autocomplete="off"
          value=${adding}
          onInput=${(e) => setAdding(e.currentTarget.value)}
        ></textarea>
        <button type="submit" disabled=${busy || !parseTokens(adding).length}>${t("adminAddButton")}</button>
      </form>
    `
  }
  </details>`;
}
