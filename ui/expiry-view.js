// Token expiry shown: "expires in 5 h" badges, the pasted tokens' ends with a warning near them, a clock that moves.
import { useEffect, useState } from "preact/hooks";
import { maskToken } from "./client.js";
import { expiryStatus, jwtExpiry } from "./expiry.js";
import { html, t } from "./page.js";

/** The time now, again every 30 s: "expires in" texts move on while the page stays open. */
export function useNow() {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

/** "expires in 5 h" as a badge, or nothing when the end is unknown. */
export function Expiry({ at, now }) {
  const s = expiryStatus(at, now);
  if (!s) return null;
  return html`<span class=${`expiry ${s.state}`} data-expiry=${s.state} title=${new Date(at).toLocaleString()}>${
    t(s.key, s.vars)
  }</span>`;
}

/** Each pasted token with a known end: its masked form and when it ends; a warning when one is near its end. */
export function TokenExpiries({ tokens }) {
  const now = useNow();
  const rows = tokens.map((tk) => [tk, jwtExpiry(tk)]).filter(([, at]) => at !== null);
  if (!rows.length) return null;
  const soon = rows.some(([, at]) => expiryStatus(at, now).state !== "ok");
  return html`<ul class="expiry-list" aria-label=${t("expiryList")}>
      ${rows.map(([tk, at]) => html`<li key=${tk}><code>${maskToken(tk)}</code><${Expiry} at=${at} now=${now} /></li>`)}
    </ul>
    ${soon && html`<p class="warn-note" role="status">${t("expirySoonNote")}</p>`}`;
}
