// The chat column: the transcript (questions, streamed replies with their timings, errors) and the composer.
import { useEffect, useRef } from "preact/hooks";
import { formatMs } from "./client.js";
import { base, html, t } from "./page.js";
import { useChat } from "./use-chat.js";

/** The title of each ChatError kind (ui/client.js), in words. */
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

/** A reply's line of timings and usage, or nothing while there is none. */
function Meta({ turn }) {
  const parts = [];
  if (turn.state === "stopped") parts.push(t("stopped"));
  // Native multi-turn: only the new message went upstream, on the conversation that remembers the rest.
  if (turn.continuation === "continued") parts.push(t("continued"));
  else if (turn.continuation?.startsWith("fresh-after")) parts.push(t("restarted"));
  if (turn.ttftMs != null) parts.push(t("ttft", { ms: formatMs(turn.ttftMs) }));
  if (turn.totalMs != null) parts.push(t("total", { ms: formatMs(turn.totalMs) }));
  if (turn.usage) {
    parts.push(
      t("usage", {
        total: turn.usage.total_tokens,
        prompt: turn.usage.prompt_tokens,
        completion: turn.usage.completion_tokens,
      }),
    );
  }
  return parts.length ? html`<p class="meta">${parts.join(" · ")}</p>` : null;
}

/** One entry of the transcript: a question, a reply, or an error with the server's message. */
function Turn({ turn }) {
  if (turn.role === "user") {
    return html`<li class=${turn.failed ? "msg user failed" : "msg user"}><span class="who">${
      t("you")
    }</span><div class="bubble">${turn.content}</div></li>`;
  }
  if (turn.role === "error") {
    const e = turn.error;
    return html`
      <li class="msg error" role="alert" data-kind=${e.kind}>
        <strong class="error-title">${t(ERROR_TITLES[e.kind] ?? "errServer")}</strong>
        <p class="error-message">${e.message}</p>
        <p class="meta">
              ${[
                e.status ? t("status", { status: e.status }) : "",
                e.code ?? "",
                e.retryAfter ? t("retryAfter", { s: e.retryAfter }) : "",
              ].filter(Boolean).join(" · ")}
            </p>
      </li>
    `;
  }
  const waiting = turn.state === "streaming" && !turn.content;
  return html`
    <li class="msg assistant" data-state=${turn.state} data-continuation=${turn.continuation ??
      undefined} aria-busy=${turn.state === "streaming" ? "true" : "false"}>
      <span class="who">${t("assistant")}</span>
      <div class="bubble">${waiting
        ? html`<span class="waiting">${t("thinking")}</span>`
        : turn.content}${turn.state === "streaming" && html`<span class="caret" aria-hidden="true"></span>`}</div>
      <${Meta} turn=${turn} />
    </li>
  `;
}

/** The chat with `tokens` as the bearer; `setLast` hears of each request, `onReplyEnd` of each reply's end. */
export function Chat({ tokens, system, setLast, onReplyEnd, warning }) {
  const list = useRef(null);
  const input = useRef(null);
  const chat = useChat({
    tokens,
    system,
    base,
    onRequest: setLast,
    onEnd: () => {
      input.current?.focus();
      onReplyEnd();
    },
  });
  const { turns, prompt, busy } = chat;

  useEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
    if (el && globalThis.matchMedia("(max-width: 800px)").matches) {
      el.lastElementChild?.scrollIntoView({ block: "nearest" });
    }
  }, [turns]);

  function onKeyDown(e) {
    // Enter sends; Shift+Enter is a new line; Enter that confirms an input method's composition (Chinese) is not a send.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      chat.send();
    } else if (e.key === "Escape" && busy) {
      chat.stop();
    }
  }

  function clear() {
    chat.clear();
    input.current?.focus();
  }

  return html`
    <section class="chat" aria-labelledby="chat-label">
      <h2 id="chat-label" class="visually-hidden">${t("chat")}</h2>
      <ol class="transcript" ref=${list} aria-live="polite" aria-relevant="additions text">
          ${turns.length === 0 &&
            html`<li class="empty"><span class="wide">${t("empty")}</span><span class="narrow">${
              t("emptyNarrow")
            }</span></li>`}
          ${turns.map((turn) => html`<${Turn} key=${turn.id} turn=${turn} />`)}
        </ol>
      <form
        class="composer"
        onSubmit=${(e) => {
          e.preventDefault();
          chat.send();
        }}
      >
        ${warning && html`<p class="warn-note send-warning" role="alert">${warning}</p>`}
        <label for="prompt" class="visually-hidden">${t("message")}</label>
        <textarea
          id="prompt"
          ref=${input}
          rows="2"
          placeholder=${t("messagePlaceholder")}
          aria-describedby="keys-hint"
          value=${prompt}
          onInput=${(e) => chat.setPrompt(e.currentTarget.value)}
          onKeyDown=${onKeyDown}
        ></textarea>
        <div class="actions">
            <span id="keys-hint" class="hint">${t("keysHint")}</span>
            <button type="button" class="ghost" onClick=${clear} disabled=${!turns.length}>${t("newChat")}</button>
            ${busy
              ? html`<button type="button" class="stop" onClick=${chat.stop}>${t("stop")}</button>`
              : html`<button type="submit" class="primary" disabled=${!prompt.trim()}>${t("send")}</button>`}
          </div>
      </form>
    </section>
  `;
}
