// The account pool card: what /v1/tokens/status says about the page's bearer, kept fresh while the page is visible.
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { fetchPoolStatus, formatClock, POOL_POLL_MS, poolPollDue, poolRows } from "./client.js";
import { isoExpiry } from "./expiry.js";
import { Expiry } from "./expiry-view.js";
import { base, html, t } from "./page.js";

/** The pool's last error kinds (lib/chat/pool.ts Outcome), in words. */
const POOL_ERRORS = {
  auth: "poolErrAuth",
  busy: "poolErrBusy",
  rate: "poolErrRate",
  server: "poolErrServer",
  network: "poolErrNetwork",
  timeout: "poolErrTimeout",
  protocol: "poolErrProtocol",
};

/**
 * The account pool's status for the page's bearer: loaded when the tokens change, after each Check and each reply
 * (the caller calls `refresh`), and in the background at most every POOL_POLL_MS while the page is visible.
 * After a 404 (a server without `/v1/tokens/status`) it stays `absent` and asks no more.
 */
export function usePool(tokens) {
  const key = tokens.join(",");
  const [pool, setPool] = useState({ result: null, loading: false, at: null });
  // What the callbacks need of the latest render, kept outside it: written by effects and callbacks only.
  const live = useRef({ key: "", seq: 0, lastAt: 0, absent: false, first: true });

  const refresh = useCallback(async () => {
    const l = live.current;
    if (!l.key || l.absent) return;
    const mine = ++l.seq;
    l.lastAt = Date.now();
    setPool((p) => ({ ...p, loading: true }));
    const result = await fetchPoolStatus(l.key.split(","), { base });
    // Only the latest answer counts, and none for tokens that were replaced meanwhile.
    if (mine !== l.seq) return;
    if (result.kind === "absent") l.absent = true;
    setPool({ result, loading: false, at: new Date() });
  }, []);

  // Synchronously after the render that changed the tokens, before any click can call `refresh`.
  useLayoutEffect(() => {
    live.current.key = key;
  }, [key]);

  // New tokens: ask at once on load, else once the typing pauses.
  useEffect(() => {
    const l = live.current;
    l.seq++;
    if (!key) {
      setPool({ result: null, loading: false, at: null });
      return;
    }
    if (l.absent) return;
    setPool((p) => ({ ...p, loading: true }));
    const timer = setTimeout(refresh, l.first ? 0 : 700);
    l.first = false;
    return () => clearTimeout(timer);
  }, [key]);

  // Background refresh: never while the tab is hidden, never sooner than POOL_POLL_MS after the last one.
  useEffect(() => {
    if (!key) return;
    const tick = () => {
      if (poolPollDue({ hidden: document.hidden, now: Date.now(), lastAt: live.current.lastAt })) refresh();
    };
    const timer = setInterval(tick, POOL_POLL_MS / 3);
    document.addEventListener("visibilitychange", tick);
    return () => {
      clearInterval(timer);
      document.removeEventListener("visibilitychange", tick);
    };
  }, [key]);

  return { pool, refresh };
}

/** A last error kind in words; a kind this page does not know, as the server sent it. */
const errorKind = (kind) => (Object.hasOwn(POOL_ERRORS, kind) ? t(POOL_ERRORS[kind]) : kind);

/** A pool row's state in words. */
function poolState(row) {
  if (row.state === "cooling") {
    return row.coolingUntil ? t("poolCooling", { time: formatClock(row.coolingUntil) }) : t("poolCoolingNow");
  }
  return t(row.state === "busy" ? "poolBusy" : "poolHealthy");
}

/** The card, or nothing without tokens or on a server without the endpoint. */
export function Pool({ pool, refresh }) {
  const { result, loading, at } = pool;
  if ((!result && !loading) || result?.kind === "absent") return null;
  let content;
  if (!result) {
    content = html`<p class="hint">${t("poolLoading")}</p>`;
  } else if (result.kind === "error") {
    const e = result.error;
    content = html`<div class="pool-error" role="alert">
      <strong class="error-title">${t("poolError")}</strong>
      <p class="error-message">${e.message}</p>
      ${
      (e.status || e.code) &&
      html`<p class="meta">${
        [e.status ? t("status", { status: e.status }) : "", e.code ?? ""].filter(Boolean).join(" · ")
      }</p>`
    }
    </div>`;
  } else {
    const s = result.status;
    const rows = poolRows(result);
    content = html`<p class="pool-summary">
        <span data-mode=${s.mode}>${
      t("poolMode", { mode: t(s.mode === "server" ? "poolModeServer" : "poolModeClient") })
    }</span>
        <span class="pool-queue">${t("poolQueue", { n: s.waiting })}</span>
        ${at && html`<span class="pool-updated">${t("poolUpdated", { time: formatClock(at) })}</span>`}
      </p>
      ${s.mode === "server" && html`<p class="hint pool-note">${t("poolServerNote")}</p>`}
      ${
      rows.length
        ? html`<ul class="pool-list" aria-label=${t("poolTokens")}>
            ${
          rows.map(
            (r) =>
              html`
                <li key=${r.key} data-state=${r.state}>
                  <span class="pool-name">${r.name
                    ? html`<code>${r.name}</code> <code class="pool-label">${r.label}</code>`
                    : html`<code>${r.label}</code>`}</span>
                  <span class=${`badge ${r.state}`}>${poolState(r)}</span>
                  <${Expiry} at=${isoExpiry(r.expiresAt)} now=${Date.now()} />
                  <span class="pool-meta">${[
                    t("poolInFlight", { n: r.inFlight }),
                    r.lastError ? t("poolLastError", { kind: errorKind(r.lastError) }) : "",
                  ].filter(Boolean).join(" · ")}</span>
                </li>
              `,
          )
        }
          </ul>`
        : html`<p class="hint">${t("poolNone")}</p>`
    }`;
  }
  return html`<section class="card pool-card" aria-labelledby="pool-label" aria-busy=${loading ? "true" : "false"}>
    <div class="card-head">
      <h2 id="pool-label">${t("pool")}</h2>
      <button type="button" class="ghost small" onClick=${refresh} aria-label=${t("poolRefreshLabel")}>${
    t("poolRefresh")
  }</button>
    </div>
    ${content}
  </section>`;
}
