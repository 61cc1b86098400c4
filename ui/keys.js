// The gateway-keys card: the keys clients send as their bearer, through /admin/keys (ADMIN_KEY), listed with their
// limits, expiry, last use and today's usage; created (the secret shown once), changed and revoked. It shares the
// admin key of the server tokens card: in this tab's memory only.
import { useRef, useState } from "preact/hooks";
import { adminCall, AdminError } from "./admin.js";
import { isoExpiry } from "./expiry.js";
import { Expiry } from "./expiry-view.js";
import { changeBody, createBody, EMPTY_FORM, keyForm, LIMITS } from "./keys-form.js";
import { html, t } from "./page.js";

/** The label of each field of a key's limits and expiry. */
const FIELD_LABELS = {
  rpm: "keyAdminRpm",
  concurrency: "keyAdminConcurrency",
  tokensPerDay: "keyAdminTokensPerDay",
  expiresAt: "keyAdminExpiresAt",
};

const count = (n) => (n == null ? t("keyAdminUnlimited") : n.toLocaleString());
const keyPath = (name) => `keys/${encodeURIComponent(name)}`;

/** The card. `adminKey` and `setAdminKey` are the page's admin key, typed here or in the server tokens card. */
export function Keys({ adminKey, setAdminKey, now }) {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [form, setForm] = useState(EMPTY_FORM);
  // The new key's name and secret, until the next action: shown this once, then gone from the page.
  const [created, setCreated] = useState(null);
  // One row at a time is changed ({name, form}) or asked to confirm its revocation (a name).
  const [editing, setEditing] = useState(null);
  const [revoking, setRevoking] = useState(null);

  /** One admin call; it ends the showing of a new secret. Resolves the answer's body, or null once the error shows. */
  async function call(method, path, body) {
    setCreated(null);
    setBusy(true);
    const r = await adminCall(method, path, { key: adminKey.trim(), body });
    setBusy(false);
    if (!r.ok) {
      // A server without server-side tokens has no admin routes.
      setError(r.error.status === 404 && path === "keys" ? { message: t("keyAdminAbsent") } : r.error);
      return null;
    }
    setError(null);
    return r.body;
  }

  async function load() {
    const body = await call("GET", "keys");
    if (body) setList(body);
  }

  async function create(e) {
    e.preventDefault();
    const made = await call("POST", "keys", createBody(form));
    if (!made) return;
    setForm(EMPTY_FORM);
    await load();
    setCreated({ name: made.name, key: made.key });
  }

  async function save(e, key) {
    e.preventDefault();
    const body = changeBody(editing.form, key);
    if (Object.keys(body).length && !(await call("PATCH", keyPath(key.name), body))) return;
    // The form closes on the list as changed: the row never shows the old limits after a save.
    await load();
    setEditing(null);
  }

  async function revoke(name) {
    if (!(await call("DELETE", keyPath(name)))) return;
    setRevoking(null);
    await load();
  }

  const rowActions = {
    busy,
    now,
    edit: (key) => (setCreated(null), setRevoking(null), setEditing({ name: key.name, form: keyForm(key) })),
    setEditForm: (f) => setEditing((ed) => ({ ...ed, form: f })),
    save,
    askRevoke: (name) => (setCreated(null), setEditing(null), setRevoking(name)),
    revoke,
    cancel: () => (setEditing(null), setRevoking(null)),
  };

  return html`<details class="card keys-card">
    <summary><h2 id="keys-label">${t("keyAdmin")}</h2></summary>
    <p class="hint">${t("keyAdminHint")}</p>
    <form class="row" onSubmit=${(e) => (e.preventDefault(), load())}>
      <label for="keys-admin-key" class="visually-hidden">${t("keyAdminKey")}</label>
      <input
        id="keys-admin-key"
        type="password"
        autocomplete="off"
        placeholder=${t("keyAdminKey")}
        value=${adminKey}
        onInput=${(e) => setAdminKey(e.currentTarget.value)}
      />
      <button type="submit" disabled=${busy}>${list ? t("keyAdminRefresh") : t("keyAdminShow")}</button>
    </form>
    <${AdminError} error=${error} />
    ${
    list &&
    html`
      <p class=${list.persistence === "memory" ? "warn-note" : "hint"} data-persistence=${list.persistence}>${t(
        `keyAdminKept_${list.persistence}`,
      )}</p>
      <p class="hint">${t("keyAdminDay", { day: list.day })}</p>
      ${list.keys.length
        ? html`<ul class="pool-list keys-list" aria-label=${t("keyAdminList")}>
          ${
          list.keys.map((k) =>
            html`
              <${KeyRow}
                key=${k.name}
                k=${k}
                editing=${editing?.name === k.name ? editing.form : null}
                revoking=${revoking === k.name}
                ...${rowActions}
              />
            `
          )
        }
        </ul>`
        : html`<p class="hint keys-none">${t("keyAdminNone")}</p>`}
      <form class="keys-create" onSubmit=${create}>
        <h3>${t("keyAdminCreate")}</h3>
        <label for="key-new-name">${t("keyAdminName")}</label>
        <input
          id="key-new-name"
          required
          autocomplete="off"
          spellcheck="false"
          value=${form.name}
          onInput=${(e) => setForm({ ...form, name: e.currentTarget.value })}
        />
        <${KeyFields} id="key-new" form=${form} setForm=${setForm} />
        <p class="hint">${t("keyAdminEmptyHint")}</p>
        <div class="row">
          <button type="submit" class="primary" disabled=${busy || !form.name.trim()}>${t(
            "keyAdminCreateButton",
          )}</button>
        </div>
      </form>
      ${created && html`<${Secret} created=${created} />`}
    `
  }
  </details>`;
}

/** A key's limits and expiry as fields; `id` makes their ids unique on the page. */
function KeyFields({ id, form, setForm }) {
  const field = (k, input) =>
    html`
      <div class="keys-field">
        <label for=${`${id}-${k}`}>${t(FIELD_LABELS[k])}</label>
        <input
          id=${`${id}-${k}`}
          autocomplete="off"
          value=${form[k]}
          onInput=${(e) => setForm({ ...form, [k]: e.currentTarget.value })}
          ...${input}
        />
      </div>
    `;
  return html`<div class="keys-fields">
    ${LIMITS.map((k) => field(k, { type: "number", min: "0", step: "1", inputmode: "numeric" }))}
    ${field("expiresAt", { type: "datetime-local" })}
  </div>`;
}

/** One key: its limits, expiry, use today; for a managed key, its change form and revocation. */
function KeyRow({ k, now, busy, editing, revoking, edit, setEditForm, save, askRevoke, revoke, cancel }) {
  const managed = k.source === "admin";
  const expiry = isoExpiry(k.expiresAt);
  return html`<li data-name=${k.name} data-source=${k.source}>
    <span class="pool-name"><code>${k.name}</code> ${
    !managed && html`<span class="optional">${t("keyAdminEnv")}</span>`
  }</span>
    ${
    expiry === null
      ? html`<span class="expiry">${t("keyAdminNever")}</span>`
      : html`<${Expiry} at=${expiry} now=${now} />`
  }
    <span class="pool-meta keys-limits">${
    t("keyAdminLimits", { rpm: count(k.rpm), concurrency: count(k.concurrency), tokens: count(k.tokensPerDay) })
  }</span>
    <span class="pool-meta keys-usage">${
    t("keyAdminUsage", {
      requests: k.usage.requests.toLocaleString(),
      prompt: k.usage.promptTokens.toLocaleString(),
      completion: k.usage.completionTokens.toLocaleString(),
    })
  } · ${
    k.lastUsedAt ? t("keyAdminLastUsed", { time: new Date(k.lastUsedAt).toLocaleString() }) : t("keyAdminNotUsed")
  }</span>
    ${
    !managed ? html`<span class="pool-meta">${t("keyAdminEnvNote")}</span>` : editing
      ? html`
        <form class="keys-edit" onSubmit=${(e) => save(e, k)}>
          <${KeyFields} id=${`key-edit-${k.name}`} form=${editing} setForm=${setEditForm} />
          <p class="hint">${t("keyAdminEmptyHint")}</p>
          <div class="row">
            <button type="submit" disabled=${busy}>${t("keyAdminSave")}</button>
            <button type="button" class="ghost" onClick=${cancel}>${t("keyAdminCancel")}</button>
          </div>
        </form>
      `
      : revoking
      ? html`
        <div class="keys-confirm" role="group" aria-label=${t("keyAdminRevoke")}>
          <p class="warn-note">${t("keyAdminRevokeAsk", { name: k.name })}</p>
          <div class="row">
            <button type="button" class="danger" disabled=${busy} onClick=${() => revoke(k.name)}>${t(
              "keyAdminRevokeYes",
            )}</button>
            <button type="button" class="ghost" onClick=${cancel}>${t("keyAdminCancel")}</button>
          </div>
        </div>
      `
      : html`
        <span class="row keys-actions">
          <button type="button" class="ghost small" disabled=${busy} onClick=${() => edit(k)}>${t(
            "keyAdminChange",
          )}</button>
          <button type="button" class="ghost small" disabled=${busy} onClick=${() => askRevoke(k.name)}>${t(
            "keyAdminRevoke",
          )}</button>
        </span>
      `
  }
  </li>`;
}

/** The new key's secret, this once, with Copy; where the clipboard is not available, the secret is selected. */
function Secret({ created }) {
  const [note, setNote] = useState("");
  const code = useRef(null);
  async function copy() {
    try {
      await navigator.clipboard.writeText(created.key);
      setNote(t("keyAdminCopied"));
    } catch {
      // No clipboard (not a secure context, or refused): select the secret for a copy by hand.
      const range = document.createRange();
      range.selectNodeContents(code.current);
      getSelection()?.removeAllRanges();
      getSelection()?.addRange(range);
      setNote(t("keyAdminCopyFailed"));
    }
  }
  return html`<div class="keys-secret" role="status">
    <p>${t("keyAdminCreated", { name: created.name })}</p>
    <div class="row">
      <code ref=${code} class="secret">${created.key}</code>
      <button type="button" class="small" onClick=${copy}>${t("keyAdminCopy")}</button>
    </div>
    ${note && html`<p class="hint">${note}</p>`}
  </div>`;
}
