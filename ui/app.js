// The playground page: tokens, the account pool, system message, a streamed multi-turn chat, and "copy as curl" (Preact + htm).
import { h, render } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import {
  ChatError,
  chatBody,
  checkToken,
  curlCommand,
  fetchPoolStatus,
  formatClock,
  formatMs,
  maskToken,
  parseTokens,
  POOL_POLL_MS,
  poolPollDue,
  poolRows,
  STORAGE_KEY,
  streamChat,
} from "./client.js";
import { pickLanguage, translator } from "./i18n.js";

const html = htm.bind(h);
const lang = pickLanguage(navigator.languages?.length ? navigator.languages : [navigator.language]);
const t = translator(lang);
document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
document.title = t("title");

// The page may be served under a path prefix: every URL is relative to it.
const base = new URL(".", location.href).href;

const ERROR_TITLES = {
  missing: "errMissing",
  auth: "errAuth",
  rate: "errRate",
  busy: "errBusy",
  upstream: "errUpstream",
  timeout: "errTimeout",
  invalid: "errInvalid",
  network: "errNetwork",
  server: "errServer",
  stream: "errStream",
};

// The pool's last error kinds (lib/pool.ts Outcome), in words.
const POOL_ERRORS = {
  auth: "poolErrAuth",
  busy: "poolErrBusy",
  rate: "poolErrRate",
  server: "poolErrServer",
  network: "poolErrNetwork",
  timeout: "poolErrTimeout",
  protocol: "poolErrProtocol",
};

function loadTokens() {
  try {
    return localStorage.getItem(STORAGE_KEY) ?? "";
  } catch {
    return "";
  }
}

function Tokens({ text, setText, onChecked }) {
  const [checks, setChecks] = useState({});
  const [note, setNote] = useState("");
  const tokens = parseTokens(text);
  const checking = Object.values(checks).includes("checking");

  async function check() {
    setNote("");
    setChecks(Object.fromEntries(tokens.map((tk) => [tk, "checking"])));
    await Promise.all(
      tokens.map(async (tk) => {
        const state = await checkToken(tk, { base });
        setChecks((c) => ({ ...c, [tk]: state }));
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
    setChecks({});
    setNote(t("forgotten"));
  }

  const label = { live: t("live"), expired: t("expired"), error: t("checkFailed"), checking: t("checking") };
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
    <div class="row">
      <button type="button" onClick=${check} disabled=${!tokens.length || checking}>${checking ? t("checking") : t("check")}</button>
      <button type="button" class="ghost" onClick=${forget} disabled=${!text}>${t("forget")}</button>
    </div>
    ${note && html`<p class="hint" role="status">${note}</p>`}
    ${tokens.some((tk) => checks[tk]) &&
    html`<ul class="token-list" aria-live="polite">
      ${tokens
        .filter((tk) => checks[tk])
        .map((tk) => html`<li key=${tk} data-state=${checks[tk]}><code>${maskToken(tk)}</code><span class=${`badge ${checks[tk]}`}>${label[checks[tk]]}</span></li>`)}
    </ul>`}
  </section>`;
}

/**
 * The account pool's status for the page's bearer: loaded when the tokens change, after each Check and each reply
 * (the caller calls `refresh`), and in the background at most every POOL_POLL_MS while the page is visible.
 * After a 404 (a server without `/v1/tokens/status`) it stays `absent` and asks no more.
 */
function usePool(tokens) {
  const key = tokens.join(",");
  const [pool, setPool] = useState({ result: null, loading: false, at: null });
  const live = useRef({ key, seq: 0, lastAt: 0, absent: false });
  live.current.key = key;

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

  // New tokens: ask at once on load, else once the typing pauses.
  const first = useRef(true);
  useEffect(() => {
    const l = live.current;
    l.seq++;
    if (!key) {
      setPool({ result: null, loading: false, at: null });
      return;
    }
    if (l.absent) return;
    setPool((p) => ({ ...p, loading: true }));
    const timer = setTimeout(refresh, first.current ? 0 : 700);
    first.current = false;
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

function poolState(row) {
  if (row.state === "cooling") return row.coolingUntil ? t("poolCooling", { time: formatClock(row.coolingUntil) }) : t("poolCoolingNow");
  return t(row.state === "busy" ? "poolBusy" : "poolHealthy");
}

function Pool({ pool, refresh }) {
  const { result, loading, at } = pool;
  // Nothing to ask about (no tokens), or an older server without the endpoint: no panel.
  if ((!result && !loading) || result?.kind === "absent") return null;
  let content;
  if (!result) {
    content = html`<p class="hint">${t("poolLoading")}</p>`;
  } else if (result.kind === "error") {
    const e = result.error;
    content = html`<div class="pool-error" role="alert">
      <strong class="error-title">${t("poolError")}</strong>
      <p class="error-message">${e.message}</p>
      ${(e.status || e.code) && html`<p class="meta">${[e.status ? t("status", { status: e.status }) : "", e.code ?? ""].filter(Boolean).join(" · ")}</p>`}
    </div>`;
  } else {
    const s = result.status;
    const rows = poolRows(result);
    content = html`<p class="pool-summary">
        <span data-mode=${s.mode}>${t("poolMode", { mode: t(s.mode === "server" ? "poolModeServer" : "poolModeClient") })}</span>
        <span class="pool-queue">${t("poolQueue", { n: s.waiting })}</span>
        ${at && html`<span class="pool-updated">${t("poolUpdated", { time: formatClock(at) })}</span>`}
      </p>
      ${s.mode === "server" && html`<p class="hint pool-note">${t("poolServerNote")}</p>`}
      ${rows.length
        ? html`<ul class="pool-list" aria-label=${t("poolTokens")}>
            ${rows.map(
              (r) => html`<li key=${r.key} data-state=${r.state}>
                <span class="pool-name">${r.name ? html`<code>${r.name}</code> <code class="pool-label">${r.label}</code>` : html`<code>${r.label}</code>`}</span>
                <span class=${`badge ${r.state}`}>${poolState(r)}</span>
                <span class="pool-meta">${[t("poolInFlight", { n: r.inFlight }), r.lastError ? t("poolLastError", { kind: POOL_ERRORS[r.lastError] ? t(POOL_ERRORS[r.lastError]) : r.lastError }) : ""].filter(Boolean).join(" · ")}</span>
              </li>`,
            )}
          </ul>`
        : html`<p class="hint">${t("poolNone")}</p>`}`;
  }
  return html`<section class="card pool-card" aria-labelledby="pool-label" aria-busy=${loading ? "true" : "false"}>
    <div class="card-head">
      <h2 id="pool-label">${t("pool")}</h2>
      <button type="button" class="ghost small" onClick=${refresh} aria-label=${t("poolRefreshLabel")}>${t("poolRefresh")}</button>
    </div>
    ${content}
  </section>`;
}

function Curl({ last }) {
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
    ${last
      ? html`<details>
          <summary>${t("showCurl")}</summary>
          <pre class="curl" tabindex="0"><code>${command}</code></pre>
        </details>`
      : html`<p class="hint">${t("noRequest")}</p>`}
  </section>`;
}

function Meta({ turn }) {
  const parts = [];
  if (turn.state === "stopped") parts.push(t("stopped"));
  if (turn.ttftMs != null) parts.push(t("ttft", { ms: formatMs(turn.ttftMs) }));
  if (turn.totalMs != null) parts.push(t("total", { ms: formatMs(turn.totalMs) }));
  if (turn.usage) parts.push(t("usage", { total: turn.usage.total_tokens, prompt: turn.usage.prompt_tokens, completion: turn.usage.completion_tokens }));
  return parts.length ? html`<p class="meta">${parts.join(" · ")}</p>` : null;
}

function Turn({ turn }) {
  if (turn.role === "user") {
    return html`<li class=${turn.failed ? "msg user failed" : "msg user"}><span class="who">${t("you")}</span><div class="bubble">${turn.content}</div></li>`;
  }
  if (turn.role === "error") {
    const e = turn.error;
    return html`<li class="msg error" role="alert" data-kind=${e.kind}>
      <strong class="error-title">${t(ERROR_TITLES[e.kind] ?? "errServer")}</strong>
      <p class="error-message">${e.message}</p>
      <p class="meta">
        ${[e.status ? t("status", { status: e.status }) : "", e.code ?? "", e.retryAfter ? t("retryAfter", { s: e.retryAfter }) : ""].filter(Boolean).join(" · ")}
      </p>
    </li>`;
  }
  const waiting = turn.state === "streaming" && !turn.content;
  return html`<li class="msg assistant" data-state=${turn.state} aria-busy=${turn.state === "streaming" ? "true" : "false"}>
    <span class="who">${t("assistant")}</span>
    <div class="bubble">${waiting ? html`<span class="waiting">${t("thinking")}</span>` : turn.content}${turn.state === "streaming" && html`<span class="caret" aria-hidden="true"></span>`}</div>
    <${Meta} turn=${turn} />
  </li>`;
}

function Chat({ tokens, system, setLast, onReplyEnd }) {
  const [turns, setTurns] = useState([]);
  const [prompt, setPrompt] = useState("");
  const [busy, setBusy] = useState(false);
  const controller = useRef(null);
  const list = useRef(null);
  const input = useRef(null);

  useEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
    if (el && window.matchMedia("(max-width: 800px)").matches) el.lastElementChild?.scrollIntoView({ block: "nearest" });
  }, [turns]);

  // "New chat" during a reply bumps the epoch, so the old reply's late updates are dropped.
  const epoch = useRef(0);

  async function send() {
    const text = prompt.trim();
    if (!text || busy) return;
    // Questions that got no answer, and errors, are not part of the conversation sent upstream.
    const history = turns.filter((x) => (x.role === "user" || x.role === "assistant") && !x.failed).map((x) => ({ role: x.role, content: x.content }));
    const body = chatBody([...history, { role: "user", content: text }], system);
    setLast({ url: new URL("v1/chat/completions", base).href, body });
    setPrompt("");
    setBusy(true);
    setTurns((ts) => [...ts, { role: "user", content: text }, { role: "assistant", content: "", state: "streaming" }]);
    const mine = epoch.current;
    const setReply = (fields) => {
      if (epoch.current === mine) setTurns((ts) => ts.map((x, i) => (i === ts.length - 1 ? { ...x, ...fields } : x)));
    };
    const ac = new AbortController();
    controller.current = ac;
    const started = performance.now();
    let firstAt = null;
    let received = "";
    try {
      const r = await streamChat({
        tokens,
        body,
        signal: ac.signal,
        base,
        onDelta: (_piece, content) => {
          firstAt ??= performance.now() - started;
          received = content;
          setReply({ content });
        },
      });
      setReply({ content: r.content, state: "done", ttftMs: r.ttftMs, totalMs: r.totalMs, usage: r.usage });
    } catch (err) {
      if (epoch.current !== mine) return;
      const error = ac.signal.aborted ? null : err instanceof ChatError ? err : new ChatError("server", err instanceof Error ? err.message : String(err));
      setTurns((ts) => {
        const kept = received
          ? [...ts.slice(0, -1), { ...ts[ts.length - 1], state: "stopped", ttftMs: firstAt, totalMs: performance.now() - started }]
          : [...ts.slice(0, -2), { ...ts[ts.length - 2], failed: true }];
        return error ? [...kept, { role: "error", error }] : kept;
      });
      // An unanswered question goes back into the box, ready to send again.
      if (!received) setPrompt((p) => p || text);
    } finally {
      if (controller.current === ac) controller.current = null;
      if (epoch.current === mine) setBusy(false);
      input.current?.focus();
      // The reply used (and maybe cooled down) an account: show the pool as it is now.
      onReplyEnd();
    }
  }

  function onKeyDown(e) {
    // Enter sends; Shift+Enter is a new line; Enter that confirms an input method's composition (Chinese) is not a send.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      send();
    } else if (e.key === "Escape" && controller.current) {
      controller.current.abort();
    }
  }

  function clear() {
    epoch.current++;
    controller.current?.abort();
    setBusy(false);
    setTurns([]);
    input.current?.focus();
  }

  return html`<section class="chat" aria-labelledby="chat-label">
    <h2 id="chat-label" class="visually-hidden">${t("chat")}</h2>
    <ol class="transcript" ref=${list} aria-live="polite" aria-relevant="additions text">
      ${turns.length === 0 && html`<li class="empty"><span class="wide">${t("empty")}</span><span class="narrow">${t("emptyNarrow")}</span></li>`}
      ${turns.map((turn, i) => html`<${Turn} key=${i} turn=${turn} />`)}
    </ol>
    <form
      class="composer"
      onSubmit=${(e) => {
        e.preventDefault();
        send();
      }}
    >
      <label for="prompt" class="visually-hidden">${t("message")}</label>
      <textarea
        id="prompt"
        ref=${input}
        rows="2"
        placeholder=${t("messagePlaceholder")}
        aria-describedby="keys-hint"
        value=${prompt}
        onInput=${(e) => setPrompt(e.currentTarget.value)}
        onKeyDown=${onKeyDown}
      ></textarea>
      <div class="actions">
        <span id="keys-hint" class="hint">${t("keysHint")}</span>
        <button type="button" class="ghost" onClick=${clear} disabled=${!turns.length}>${t("newChat")}</button>
        ${busy
          ? html`<button type="button" class="stop" onClick=${() => controller.current?.abort()}>${t("stop")}</button>`
          : html`<button type="submit" class="primary" disabled=${!prompt.trim()}>${t("send")}</button>`}
      </div>
    </form>
  </section>`;
}

function App() {
  const [text, setTextState] = useState(loadTokens);
  const [system, setSystem] = useState("");
  const [last, setLast] = useState(null);
  const tokens = parseTokens(text);
  const { pool, refresh } = usePool(tokens);

  function setText(v) {
    setTextState(v);
    try {
      if (v.trim()) localStorage.setItem(STORAGE_KEY, v);
      else localStorage.removeItem(STORAGE_KEY);
    } catch {
      // Private mode without storage: tokens live for this page only.
    }
  }

  return html`<div class="page">
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
          <h2 id="system-label"><label for="system">${t("system")}</label> <span class="optional">${t("optional")}</span></h2>
          <textarea id="system" rows="3" placeholder=${t("systemPlaceholder")} value=${system} onInput=${(e) => setSystem(e.currentTarget.value)}></textarea>
        </section>
        <${Curl} last=${last} />
      </aside>
      <${Chat} tokens=${tokens} system=${system} setLast=${setLast} onReplyEnd=${refresh} />
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
